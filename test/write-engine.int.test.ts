import type { Principal } from '../src/access/principal';
import { parseScopes } from '../src/access/principal';
import { endpointDef, imagingStudyDef, organizationDef } from '../src/registry/resource-types';
import type { WriteRequest } from '../src/registry/write-engine';
import { writeResources } from '../src/registry/write-engine';
import type { Database, Queryable } from '../src/store/database';
import { testDatabase } from './helpers/db';
import { aStudy, anEndpoint, anOrganization, patient } from './helpers/fixtures';

const system = (org: string): Principal => ({ subject: 's', issuer: 'i', organization: org, role: 'system', scopes: parseScopes('system/*.cruds'), purposeOfUse: 'TREAT' });

let db: Database;
let drop: () => Promise<void>;
let endpointId: string;
beforeAll(async () => {
  ({ db, drop } = await testDatabase());
  const [org] = await db.transaction((tx) => writeResources(tx, system('ADMIN'), [{ method: 'POST', def: organizationDef, resource: anOrganization('RRK'), at: 'Organization' }]));
  const [ep] = await db.transaction((tx) => writeResources(tx, system('ADMIN'), [{ method: 'POST', def: endpointDef, resource: anEndpoint(org!.id, 'https://pacs.example/dicom-web'), at: 'Endpoint' }]));
  endpointId = ep!.id;
});
afterAll(async () => drop());

function counting(tx: Queryable): { q: Queryable; count(): number } {
  let n = 0;
  return { q: { query: (sql, params) => { n++; return tx.query(sql, params); } }, count: () => n };
}

function conditionalPuts(n: number, offset: number): WriteRequest[] {
  return Array.from({ length: n }, (_, i) => {
    const uid = `1.2.826.0.1.3680043.10.77.${offset + i}`;
    return { method: 'PUT', def: imagingStudyDef, conditional: `identifier=urn:dicom:uid|urn:oid:${uid}`, resource: aStudy({ endpointId, uid, nhs: patient(i % 50) }), at: `Bundle.entry[${i}].resource` };
  });
}

describe('set-based writes', () => {
  it('when a Bundle carries 10 or 200 conditional updates, then the number of statements is the same', async () => {
    const statements: number[] = [];
    for (const [n, offset] of [[10, 0], [200, 1000]] as const) {
      await db.transaction(async (tx) => {
        const c = counting(tx);
        const outcomes = await writeResources(c.q, system('RRK'), conditionalPuts(n, offset));
        expect(outcomes.filter((o) => o.code === 'RESOURCE_CREATED')).toHaveLength(n);
        statements.push(c.count());
      });
    }
    expect(statements[1]).toBe(statements[0]);
    // Re-sending the 200: all matched by their condition, none created, still the same statement count at most.
    await db.transaction(async (tx) => {
      const c = counting(tx);
      const outcomes = await writeResources(c.q, system('RRK'), conditionalPuts(200, 1000));
      expect(outcomes.every((o) => o.code === 'RESOURCE_UNCHANGED')).toBe(true);
      expect(c.count()).toBeLessThanOrEqual(statements[0] as number);
    });
  });
});
