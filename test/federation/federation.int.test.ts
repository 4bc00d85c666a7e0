jest.mock('fhir-kit-client', () => jest.requireActual('../publisher/support/fhir-kit-client-cjs').loadFhirKitClient(), { virtual: true });
import { federationExtension } from '../../src/federation/extension';
import { HOME_COMMUNITY_ID_URL } from '../../src/federation/fan-out';
import { aStudy, get, NHS, patient, post, registerNetwork } from '../helpers/fixtures';
import { startTestServer } from '../helpers/server';
import type { TestServer } from '../helpers/server';
import { EAST, FAILS, FakePeer, GARBAGE, HANGS, HOME, LOCUS_ORG, WALES, addAgreement, federationConfig, federationKey, trustLocus } from './support';

type Entry = { resource: { resourceType: string; description?: string; extension?: { url: string; valueOid?: string }[]; issue?: { code: string; diagnostics: string }[] }; search?: { mode: string } };

const P = patient(21);
const OPTED_OUT = patient(22);
const NOT_ASKED = 'urn:oid:2.16.840.1.113883.3.9901.7';

/** A peer Locus with its own data: `ods` shares with Locus's organisation, `ods2` does not. */
async function peerLocus(env: Record<string, string>, ods: string, ods2: string, label: string): Promise<TestServer> {
  const s = await startTestServer({ env });
  const net = await registerNetwork(s, [{ ods }, { ods: ods2 }, { ods: LOCUS_ORG, kind: 'peer-registry' }]);
  await addAgreement(s, `${ods}-lwm`, ods, LOCUS_ORG);
  const pub = await s.tokenFor(ods, 'publisher');
  const pub2 = await s.tokenFor(ods2, 'publisher');
  expect((await post(s, pub, '/fhir/ImagingStudy', aStudy({ nhs: P, endpointId: net[ods]!.endpointId, description: `${label} CT` }))).status).toBe(201);
  expect((await post(s, pub2, '/fhir/ImagingStudy', aStudy({ nhs: P, endpointId: net[ods2]!.endpointId, description: `${label} unshared` }))).status).toBe(201);
  expect((await post(s, pub, '/fhir/ImagingStudy', aStudy({ nhs: OPTED_OUT, endpointId: net[ods]!.endpointId, description: `${label} opted out` }))).status).toBe(201);
  // The patient has opted out of sharing beyond the custodian (rules as Consent writes extract them).
  await s.db.query(
    `insert into consent (id, version, last_updated, patient_nhs, custodian_ods, status, rules, resource)
     values ('optout', 1, now(), $1, $2, 'active', '[{"orgs":[],"categories":[],"start":null,"end":null}]'::jsonb, '{}')`,
    [OPTED_OUT, ods],
  );
  return s;
}

describe('federated query across communities (MHD Target Communities)', () => {
  let locus: TestServer;
  let wales: TestServer;
  let east: TestServer;
  const hang = new FakePeer('hang');
  const fail = new FakePeer('fail');
  const garbage = new FakePeer('garbage');
  const notAsked = new FakePeer('garbage');
  let clinician: string;

  beforeAll(async () => {
    const key = await federationKey();
    wales = await peerLocus(trustLocus(key.publicJwk), 'W9Z01', 'W9Z02', 'Wales');
    east = await peerLocus(trustLocus(key.publicJwk), 'E1A01', 'E1A02', 'East');
    const [hangUrl, failUrl, garbageUrl, notAskedUrl] = await Promise.all([hang.start(), fail.start(), garbage.start(), notAsked.start()]);
    const config = federationConfig(key.privateJwk, [
      { communityId: WALES, name: 'Wales', fhirBase: wales.fhirBase, organization: 'W9Z99', agreementId: 'wales', audience: 'urn:locus:test' },
      { communityId: EAST, name: 'East', fhirBase: east.fhirBase, organization: 'E1Z99', agreementId: 'east', audience: 'urn:locus:test' },
      { communityId: HANGS, name: 'Hangs', fhirBase: hangUrl, organization: 'H1Z99', agreementId: 'hangs', timeoutMs: 300 },
      { communityId: FAILS, name: 'Fails', fhirBase: failUrl, organization: 'F1Z99', agreementId: 'fails' },
      { communityId: GARBAGE, name: 'Garbage', fhirBase: garbageUrl, organization: 'G1Z99', agreementId: 'garbage' },
      { communityId: NOT_ASKED, name: 'No agreement', fhirBase: notAskedUrl, organization: 'N1Z99', agreementId: 'none' },
    ]);
    locus = await startTestServer({ extensions: [federationExtension(config)] });
    const net = await registerNetwork(locus, [{ ods: 'RRK' }]);
    for (const [id, provider] of [['wales', 'W9Z99'], ['east', 'E1Z99'], ['hangs', 'H1Z99'], ['fails', 'F1Z99'], ['garbage', 'G1Z99']] as const) {
      await addAgreement(locus, id, provider, LOCUS_ORG);
    }
    const rrk = await locus.tokenFor('RRK', 'publisher');
    expect((await post(locus, rrk, '/fhir/ImagingStudy', aStudy({ nhs: P, endpointId: net.RRK!.endpointId, description: 'Local CT' }))).status).toBe(201);
    clinician = await locus.tokenFor('RRK', 'clinician');
  });
  afterAll(async () => {
    await Promise.all([locus?.close(), wales?.close(), east?.close(), hang.stop(), fail.stop(), garbage.stop(), notAsked.stop()]);
  });

  const search = (token: string, extra: string, nhs = P) => get(locus, token, `/fhir/ImagingStudy?patient.identifier=${encodeURIComponent(`${NHS}|${nhs}`)}&${extra}`);
  const matches = (entries: Entry[]): Entry[] => entries.filter((e) => e.search?.mode === 'match');
  const communityOf = (e: Entry): string | undefined => e.resource.extension?.find((x) => x.url === HOME_COMMUNITY_ID_URL)?.valueOid;

  test('when a clinician asks all communities, then local and peer pointers arrive in one searchset, each marked with its community, and failing peers are named in a warning', async () => {
    const res = await search(clinician, 'targetCommunityIdList=all');
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('searchset');
    const found = matches(res.body.entry).map((e) => [e.resource.description, communityOf(e)]);
    expect(found).toEqual(expect.arrayContaining([['Local CT', HOME], ['Wales CT', WALES], ['East CT', EAST]]));
    expect(found).toHaveLength(3);
    const outcome = (res.body.entry as Entry[]).find((e) => e.search?.mode === 'outcome')?.resource;
    const issues = outcome?.issue ?? [];
    expect(issues.find((i) => i.diagnostics.includes(HANGS))?.code).toBe('timeout');
    expect(issues.find((i) => i.diagnostics.includes(FAILS))?.diagnostics).toContain('HTTP 500');
    expect(issues.find((i) => i.diagnostics.includes(GARBAGE))?.code).toBe('incomplete');
    expect(issues.find((i) => i.diagnostics.includes(NOT_ASKED))?.diagnostics).toContain('no sharing agreement');
    expect(issues.some((i) => i.diagnostics.includes(WALES) || i.diagnostics.includes(EAST))).toBe(false);
    expect(notAsked.requests).toBe(0);
  });

  test('when a clinician names one community, then only that peer is asked and nothing is missing', async () => {
    const before = hang.requests;
    const res = await search(clinician, `targetCommunityIdList=${encodeURIComponent(WALES)}`);
    expect(res.status).toBe(200);
    expect(matches(res.body.entry).map((e) => e.resource.description).sort()).toEqual(['Local CT', 'Wales CT']);
    expect((res.body.entry as Entry[]).some((e) => e.search?.mode === 'outcome')).toBe(false);
    expect(hang.requests).toBe(before);
  });

  test('when the patient has opted out at the peer, then the peer returns nothing for them', async () => {
    const res = await search(clinician, `targetCommunityIdList=${encodeURIComponent(`${WALES},${EAST}`)}`, OPTED_OUT);
    expect(res.status).toBe(200);
    expect(matches(res.body.entry ?? [])).toEqual([]);
  });

  test('when the search is federated, then Locus audits which peers were asked for whom, and the peer audits the query as its own', async () => {
    await search(clinician, `targetCommunityIdList=${encodeURIComponent(WALES)}`);
    const outbound = await locus.db.query<{ resource: string }>(`select resource from audit_event where resource like '%federation-peer%' and $1 = any(patients)`, [P]);
    expect(outbound.rows.length).toBeGreaterThan(0);
    expect(outbound.rows.some((r) => r.resource.includes(`${WALES} agreement=wales outcome=ok`))).toBe(true);
    const inbound = await wales.db.query<{ agent_ods: string; subtype: string }>(`select agent_ods, subtype from audit_event where $1 = any(patients) and agent_ods = $2`, [P, LOCUS_ORG]);
    expect(inbound.rows.length).toBeGreaterThan(0);
  });

  test('when a peer asks for a fan-out, or the request names an unknown community or no patient, then it is refused with an OperationOutcome', async () => {
    const peer = await locus.tokenFor(LOCUS_ORG, 'peer');
    const loop = await search(peer, 'targetCommunityIdList=all');
    expect(loop.status).toBe(403);
    expect(loop.body.resourceType).toBe('OperationOutcome');
    const unknown = await search(clinician, `targetCommunityIdList=${encodeURIComponent('urn:oid:1.2.3')}`);
    expect(unknown.status).toBe(400);
    const noPatient = await get(locus, clinician, `/fhir/ImagingStudy?identifier=urn:oid:1.2.3&targetCommunityIdList=all`);
    expect(noPatient.status).toBe(400);
  });

  test('when a peer registry searches Locus directly, then its organisation is held to the sharing agreements like any caller', async () => {
    const peer = await wales.tokenFor(LOCUS_ORG, 'peer');
    const res = await get(wales, peer, `/fhir/ImagingStudy?patient.identifier=${encodeURIComponent(`${NHS}|${P}`)}`);
    expect(res.status).toBe(200);
    expect(matches(res.body.entry).map((e) => e.resource.description)).toEqual(['Wales CT']);
  });
});
