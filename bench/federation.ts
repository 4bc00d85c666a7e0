/**
 * Federated search cost: a clinician's per-patient search on Locus, alone and fanned out to two
 * healthy peer Locus instances on loopback. The budget (issue 7): federated − local ≤ slowest
 * peer + 10 ms (medians). All three run in this process, so peers and Locus share one CPU thread:
 * the figure is pessimistic against separate hosts.
 */
import { exportJWK, generateKeyPair } from 'jose';
import { loadDevIssuer } from '../src/access/dev-issuer';
import type { DevIssuer } from '../src/access/dev-issuer';
import { parseScopes } from '../src/access/principal';
import { loadConfig } from '../src/config';
import { federationExtension } from '../src/federation/extension';
import type { FederationConfig } from '../src/federation/federation-config';
import { createLogger } from '../src/log';
import { testNhsNumber } from '../src/registry/nhs-number';
import { endpointDef, imagingStudyDef, organizationDef } from '../src/registry/resource-types';
import { writeResources } from '../src/registry/write-engine';
import { startLocus } from '../src/server';
import type { Locus } from '../src/server';
import { openDatabase } from '../src/store/open';
import type { Database } from '../src/store/database';

export interface FederationFigures {
  localMs: number;
  peerMs: number[];
  federatedMs: number;
  overheadMs: number;
  budgetMs: number;
  withinBudget: boolean;
  iterations: number;
}

const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const SYSTEM = { subject: 'bench', issuer: 'bench', organization: 'ADMIN', role: 'system' as const, scopes: parseScopes('system/*.cruds'), purposeOfUse: 'TREAT' };
const P = testNhsNumber(42);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function seed(db: Database, ods: string, recipient: string | undefined, studies: number): Promise<void> {
  const kinds: [string, string][] = [[ods, 'network-trust'], ...(recipient ? [[recipient, 'peer-registry'] as [string, string]] : [])];
  const orgs = await db.transaction((tx) => writeResources(tx, SYSTEM, kinds.map(([o, k]) => ({ method: 'POST' as const, def: organizationDef, at: 'Organization', resource: { resourceType: 'Organization', identifier: [{ system: ODS, value: o }], type: [{ coding: [{ system: 'https://locus.nhs.example/fhir/CodeSystem/organization-kind', code: k }] }], name: o } }))));
  const [ep] = await db.transaction((tx) => writeResources(tx, SYSTEM, [{ method: 'POST', def: endpointDef, at: 'Endpoint', resource: { resourceType: 'Endpoint', status: 'active', connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'dicom-wado-rs' }, managingOrganization: { reference: `Organization/${orgs[0]?.id}` }, payloadType: [{ text: 'DICOM' }], address: 'https://pacs.example.nhs.uk/dicom-web' } }]));
  await db.transaction((tx) => writeResources(tx, { ...SYSTEM, organization: ods, role: 'publisher' }, Array.from({ length: studies }, (_, i) => ({ method: 'POST' as const, def: imagingStudyDef, at: 'ImagingStudy', resource: { resourceType: 'ImagingStudy', identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:1.2.826.0.1.3680043.10.78.${ods.length}${ods.charCodeAt(0)}.${i + 1}` }], status: 'available', modality: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'CT' }], subject: { identifier: { system: NHS, value: P } }, started: `2024-05-${String((i % 28) + 1).padStart(2, '0')}T10:00:00Z`, endpoint: [{ reference: `Endpoint/${ep?.id}` }] } }))));
  if (recipient) await db.query(`insert into sharing_agreement (id, provider_ods, recipient_ods, categories, period_start, period_end, description) values ('a', $1, $2, '{}', now() - interval '1 day', null, 'bench')`, [ods, recipient]);
}

async function start(issuer: DevIssuer, env: Record<string, string>, extensions = [] as ReturnType<typeof federationExtension>[]): Promise<{ locus: Locus; db: Database }> {
  const db = await openDatabase({});
  const base = loadConfig({ PORT: '0', LOCUS_LOG_LEVEL: 'silent', LOCUS_AUDIENCE: 'urn:locus:bench', LOCUS_DEV_ISSUER: 'false', ...env });
  const config = { ...base, trustedIssuers: [...base.trustedIssuers, issuer.trusted] };
  const locus = await startLocus(config, { db, logger: createLogger('silent'), extraExtensions: extensions });
  config.baseUrl = locus.url;
  return { locus, db };
}

async function time(url: string, token: string, n: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    await res.text();
    if (res.status !== 200) throw new Error(`HTTP ${res.status} from ${url}`);
    xs.push(performance.now() - t);
  }
  return median(xs);
}

export async function benchFederation(options: { iterations?: number; studies?: number } = {}): Promise<FederationFigures> {
  const n = options.iterations ?? 200;
  const studies = options.studies ?? 20;
  const issuer = await loadDevIssuer();
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const trust = { LOCUS_TRUSTED_ISSUERS: JSON.stringify([{ issuer: 'urn:locus:federation:LWM01', jwks: { keys: [{ ...(await exportJWK(publicKey)), alg: 'ES256' }] }, organizations: ['LWM01'] }]) };
  const peers = [await start(issuer, trust), await start(issuer, trust)];
  await seed(peers[0]!.db, 'W9Z01', 'LWM01', studies);
  await seed(peers[1]!.db, 'E1A01', 'LWM01', studies);
  const config: FederationConfig = {
    homeCommunityId: 'urn:oid:2.16.840.1.113883.3.9901.1', organization: 'LWM01', issuer: 'urn:locus:federation:LWM01', clientId: 'locus-lwm01',
    privateJwk: { ...(await exportJWK(privateKey)), alg: 'ES256' } as FederationConfig['privateJwk'], timeoutMs: 3000,
    peers: peers.map((p, i) => ({ communityId: `urn:oid:2.16.840.1.113883.3.9901.${i + 2}`, name: `peer ${i + 1}`, fhirBase: `${p.locus.url}/fhir`, organization: i === 0 ? 'W9Z99' : 'E1Z99', agreementId: `peer${i}`, audience: 'urn:locus:bench' })),
  };
  const main = await start(issuer, {}, [federationExtension(config)]);
  try {
    await seed(main.db, 'RRK', undefined, studies);
    for (const [id, provider] of [['peer0', 'W9Z99'], ['peer1', 'E1Z99']] as const) await main.db.query(`insert into sharing_agreement (id, provider_ods, recipient_ods, categories, period_start, period_end, description) values ($1, $2, 'LWM01', '{}', now() - interval '1 day', null, 'bench')`, [id, provider]);
    for (const s of [...peers, main]) await (s.locus.deps.policy as { refresh?: () => Promise<void> }).refresh?.();
    const query = `/fhir/ImagingStudy?patient.identifier=${encodeURIComponent(`${NHS}|${P}`)}`;
    const clinician = await issuer.mint({ org: 'RRK', role: 'clinician', audience: 'urn:locus:bench' });
    const peerToken = await issuer.mint({ org: 'LWM01', role: 'peer', audience: 'urn:locus:bench' });
    const fedUrl = `${main.locus.url}${query}&targetCommunityIdList=all`;
    await time(fedUrl, clinician, 20); // warm-up: connections, prepared plans, peer tokens
    const localMs = await time(`${main.locus.url}${query}`, clinician, n);
    const peerMs = [await time(`${peers[0]!.locus.url}${query}`, peerToken, n), await time(`${peers[1]!.locus.url}${query}`, peerToken, n)];
    const federatedMs = await time(fedUrl, clinician, n);
    const overheadMs = federatedMs - localMs;
    const budgetMs = Math.max(...peerMs) + 10;
    const r = (x: number): number => Math.round(x * 100) / 100;
    return { localMs: r(localMs), peerMs: peerMs.map(r), federatedMs: r(federatedMs), overheadMs: r(overheadMs), budgetMs: r(budgetMs), withinBudget: overheadMs <= budgetMs, iterations: n };
  } finally {
    for (const s of [main, ...peers]) {
      await s.locus.close();
      await s.db.close();
    }
  }
}

if (require.main === module) {
  benchFederation({ iterations: Number(process.env.BENCH_FEDERATION_ITERATIONS ?? 200) })
    .then((f) => console.log(JSON.stringify(f)))
    .catch((e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    });
}
