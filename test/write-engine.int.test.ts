import type { Principal } from '../src/access/principal';
import { parseScopes } from '../src/access/principal';
import { consentDef, endpointDef, imagingStudyDef, organizationDef } from '../src/registry/resource-types';
import { aConsent } from '../src/demo/seed';
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

describe('consent marks under concurrent writes (migration 011, the write engine\'s advisory lock)', () => {
  /** Runs `first` in a transaction held open after its writes, starts `second` meanwhile, then lets the first commit. */
  async function overlap(first: WriteRequest[], second: WriteRequest[]): Promise<void> {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let wrote!: () => void;
    const written = new Promise<void>((r) => (wrote = r));
    const one = db.transaction(async (tx) => {
      await writeResources(tx, system('RRK'), first);
      wrote();
      await gate;
    });
    await written;
    const two = db.transaction((tx) => writeResources(tx, system('RRK'), second));
    // Time for the second writer to run as far as it can before the first commits.
    await new Promise((r) => setTimeout(r, 300));
    release();
    await Promise.all([one, two]);
  }

  async function marks(nhs: string): Promise<{ current: boolean[]; versions: boolean[] }> {
    const current = await db.query<{ consent_recorded: boolean }>('select consent_recorded from imaging_study where patient_nhs = $1', [nhs]);
    const versions = await db.query<{ consent_recorded: boolean }>("select consent_recorded from resource_version where resource_type = 'ImagingStudy' and patient_nhs = $1", [nhs]);
    return { current: current.rows.map((r) => r.consent_recorded), versions: versions.rows.map((r) => r.consent_recorded) };
  }

  const study = (nhs: string): WriteRequest => ({ method: 'POST', def: imagingStudyDef, resource: aStudy({ endpointId, nhs }), at: 'ImagingStudy' });
  const optOut = (nhs: string): WriteRequest => ({ method: 'POST', def: consentDef, resource: aConsent(nhs, [], 'RRK'), at: 'Consent' });

  it('when a Consent is recorded while a publish for the same patient is still open, then the published pointer is marked for the consent check', async () => {
    const nhs = patient(901);
    await overlap([study(nhs)], [optOut(nhs)]);
    expect(await marks(nhs)).toEqual({ current: [true], versions: [true] });
  });

  it('when a pointer is published while a Consent for its patient is still open, then the pointer is marked once the Consent commits', async () => {
    const nhs = patient(902);
    await overlap([optOut(nhs)], [study(nhs)]);
    expect(await marks(nhs)).toEqual({ current: [true], versions: [true] });
  });

  it('when pointers of a patient without a Consent are published, then they are not marked, and a later Consent marks them and their versions', async () => {
    const nhs = patient(903);
    await db.transaction((tx) => writeResources(tx, system('RRK'), [study(nhs), study(nhs)]));
    expect(await marks(nhs)).toEqual({ current: [false, false], versions: [false, false] });
    await db.transaction((tx) => writeResources(tx, system('RRK'), [optOut(nhs)]));
    expect(await marks(nhs)).toEqual({ current: [true, true], versions: [true, true] });
  });
});
