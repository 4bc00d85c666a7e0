import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { JWK, CryptoKey } from 'jose';
import { createHmac } from 'node:crypto';
import request from 'supertest';
import { startTestServer } from './helpers/server';
import type { TestServer } from './helpers/server';
import { aStudy, patient, post, registerNetwork, spineCode } from './helpers/fixtures';

const ISSUER = 'https://idp.trust-rrk.example.nhs.uk';
let s: TestServer;
let key: CryptoKey;
let publicJwk: JWK;
let net: Awaited<ReturnType<typeof registerNetwork>>;

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { scope: 'user/ImagingStudy.rs system/ImagingStudy.cruds', org: 'RRK', role: 'publisher', ...extra };
}

async function sign(payload: Record<string, unknown>, opts: { iss?: string; aud?: string; exp?: number; nbf?: number; alg?: string; k?: CryptoKey } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(payload)
    .setProtectedHeader({ alg: opts.alg ?? 'ES256', kid: publicJwk.kid })
    .setIssuer(opts.iss ?? ISSUER)
    .setSubject('user-1')
    .setAudience(opts.aud ?? 'urn:locus:test')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? now + 600);
  if (opts.nbf) jwt.setNotBefore(opts.nbf);
  return jwt.sign(opts.k ?? key);
}

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  key = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
  s = await startTestServer({ env: { LOCUS_TRUSTED_ISSUERS: JSON.stringify([{ issuer: ISSUER, jwks: { keys: [publicJwk] }, organizations: ['RRK'] }]) } });
  net = await registerNetwork(s, [{ ods: 'RRK' }, { ods: 'RJE' }]);
});
afterAll(async () => s.close());

const search = (token?: string): request.Test => {
  const r = request(s.baseUrl).get(`/fhir/ImagingStudy?patient.identifier=${patient(1)}`);
  return token === undefined ? r : r.set('authorization', `Bearer ${token}`);
};

describe('tokens that must fail', () => {
  it('when a valid token from a trusted issuer is sent, then the search is allowed', async () => {
    expect((await search(await sign(claims()))).status).toBe(200);
  });

  const cases: [string, () => Promise<string | undefined>][] = [
    ['no token', async () => undefined],
    ['a malformed token', async () => 'not.a.jwt!'],
    ['an expired token', async () => sign(claims(), { exp: Math.floor(Date.now() / 1000) - 3600 })],
    ['a token not yet valid', async () => sign(claims(), { nbf: Math.floor(Date.now() / 1000) + 3600 })],
    ['a token for another audience', async () => sign(claims(), { aud: 'https://other-registry.example' })],
    ['a token from an unknown issuer', async () => sign(claims(), { iss: 'https://evil.example' })],
    ['a token signed by another key', async () => sign(claims(), { k: (await generateKeyPair('ES256')).privateKey })],
    ['an alg none token', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims(), iss: ISSUER, sub: 'x', aud: 'urn:locus:test', exp: Math.floor(Date.now() / 1000) + 600 })}.`],
    [
      'an HS256 token signed with the public key as secret',
      async () => {
        const head = b64({ alg: 'HS256', typ: 'JWT', kid: 'k1' });
        const body = b64({ ...claims(), iss: ISSUER, sub: 'x', aud: 'urn:locus:test', exp: Math.floor(Date.now() / 1000) + 600 });
        const sig = createHmac('sha256', JSON.stringify(publicJwk)).update(`${head}.${body}`).digest('base64url');
        return `${head}.${body}.${sig}`;
      },
    ],
    ['a token whose issuer may not assert the organisation', async () => sign(claims({ org: 'RJE' }))],
    ['a token with an unknown role', async () => sign(claims({ role: 'superuser' }))],
  ];
  it.each(cases)('when the request carries %s, then 401 with an OperationOutcome', async (_name, make) => {
    const res = await search(await make());
    expect(res.status).toBe(401);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].code).toBe('login');
    expect(res.headers['www-authenticate']).toMatch(/Bearer/);
    expect(res.text).not.toContain('"entry"');
  });
});

describe('verified-token cache', () => {
  it('when a token expires after it was verified and cached, then the next request is refused', async () => {
    // Expired 27 s ago: still inside the 30 s clock tolerance for about 3 more seconds.
    const token = await sign(claims(), { exp: Math.floor(Date.now() / 1000) - 27 });
    expect((await search(token)).status).toBe(200);
    expect((await search(token)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 4200));
    expect((await search(token)).status).toBe(401);
  });

  it('when a cached token is replayed with a tampered signature, then it is refused', async () => {
    const token = await sign(claims());
    expect((await search(token)).status).toBe(200);
    const tampered = `${token.slice(0, -4)}${token.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    expect((await search(tampered)).status).toBe(401);
  });
});

describe('who may write what', () => {
  it('when a valid token for RRK writes a pointer held by RJE, then 403 AUTHOR_CREDENTIALS_ERROR and nothing is written', async () => {
    const token = await s.tokenFor('RRK', 'publisher');
    const res = await post(s, token, '/fhir/ImagingStudy', aStudy({ endpointId: net.RJE!.endpointId, nhs: patient(60) }));
    expect(res.status).toBe(403);
    expect(spineCode(res)).toBe('AUTHOR_CREDENTIALS_ERROR');
    const rje = await s.tokenFor('RJE', 'clinician');
    const found = await request(s.baseUrl).get(`/fhir/ImagingStudy?patient.identifier=${patient(60)}`).set('authorization', `Bearer ${rje}`);
    expect(found.body.entry).toBeUndefined();
  });

  it('when RRK updates or deletes a pointer held by RJE, then 403 and it is unchanged', async () => {
    const rje = await s.tokenFor('RJE', 'publisher');
    const created = await post(s, rje, '/fhir/ImagingStudy', aStudy({ endpointId: net.RJE!.endpointId, nhs: patient(61) }));
    const rrk = await s.tokenFor('RRK', 'publisher');
    const upd = await request(s.baseUrl).put(`/fhir/ImagingStudy/${created.body.id}`).set('authorization', `Bearer ${rrk}`).set('content-type', 'application/fhir+json').send(JSON.stringify({ ...created.body, description: 'hijacked' }));
    expect(upd.status).toBe(403);
    const del = await request(s.baseUrl).delete(`/fhir/ImagingStudy/${created.body.id}`).set('authorization', `Bearer ${rrk}`);
    expect(del.status).toBe(403);
    const read = await request(s.baseUrl).get(`/fhir/ImagingStudy/${created.body.id}`).set('authorization', `Bearer ${rje}`);
    expect(read.body.description).toBe(created.body.description);
    expect(read.body.meta.versionId).toBe('1');
  });

  it('when a clinician (read scopes only) tries to create, then 403 ACCESS_DENIED_LEVEL', async () => {
    const token = await s.tokenFor('RRK', 'clinician');
    const res = await post(s, token, '/fhir/ImagingStudy', aStudy({ endpointId: net.RRK!.endpointId }));
    expect(res.status).toBe(403);
    expect(spineCode(res)).toBe('ACCESS_DENIED_LEVEL');
  });

  it('when a publisher tries to register an Organization, then 403: admins only', async () => {
    const token = await s.tokenFor('RRK', 'publisher', { scope: 'system/Organization.cruds' });
    const res = await post(s, token, '/fhir/Organization', { resourceType: 'Organization', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'RZZ' }], type: [{ coding: [{ system: 'https://locus.nhs.example/fhir/CodeSystem/organization-kind', code: 'network-trust' }] }], name: 'x' });
    expect(res.status).toBe(403);
  });

  it('when the token lacks a search scope, then 403', async () => {
    const token = await s.tokenFor('RRK', 'clinician', { scope: 'user/DocumentReference.rs' });
    expect((await search(token)).status).toBe(403);
  });
});
