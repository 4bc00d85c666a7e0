import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { keyEncryptionKey, loadKeyEncryptionKey, openPrivateKey, parseKeyEncryptionKey, sealPrivateKey } from '../../src/resolve/key-encryption';
import { ConfigError } from '../../src/config';
import { loadResolveConfig, viewerUrl } from '../../src/resolve/resolve-config';
import { JWKS_MAX_AGE_SECONDS, retrievalKeys } from '../../src/resolve/retrieval-keys';
import type { RetrievalGrant } from '../../src/resolve/retrieval-token';
import { signRetrievalToken, verifyRetrievalToken } from '../../src/resolve/retrieval-token';
import type { Database } from '../../src/store/database';
import { testDatabase } from '../helpers/db';

let db: Database;
let drop: () => Promise<void>;
const ROTATION = 3600;
const TTL = 300;
const grant: RetrievalGrant = { studyUid: '1.2.3.4', custodian: 'RRK', organization: 'RJE', subject: 'dr.jones', role: 'clinician', purposeOfUse: 'TREAT', breakGlass: false };
const ISS = 'http://registry.test';
const KEK = keyEncryptionKey(randomBytes(32));

beforeAll(async () => {
  ({ db, drop } = await testDatabase());
});
afterAll(async () => {
  await drop();
});
beforeEach(async () => {
  await db.query('delete from retrieval_key');
});

function clock(start: Date): { now: () => Date; advance(seconds: number): void } {
  let t = start.getTime();
  return { now: () => new Date(t), advance: (s) => { t += s * 1000; } };
}

describe('retrieval signing keys', () => {
  it('when time passes, then the successor is published before it signs, takes over at rotation, and the old key stays published until its tokens have expired', async () => {
    const c = clock(new Date('2026-01-01T00:00:00Z'));
    const keys = retrievalKeys(db, { rotationSeconds: ROTATION, tokenTtlSeconds: TTL, kek: KEK, now: c.now });
    const a = await keys.signingKey();
    expect((await keys.publicJwks()).keys.map((k) => k.kid)).toEqual([a.kid]);
    const lastOfA = await signRetrievalToken(keys, ISS, grant, TTL, c.now());

    c.advance(ROTATION - JWKS_MAX_AGE_SECONDS); // the successor is due: published, not yet signing
    keys.refresh();
    expect((await keys.signingKey()).kid).toBe(a.kid);
    const published = (await keys.publicJwks()).keys.map((k) => k.kid);
    expect(published).toHaveLength(2);
    const b = published.find((k) => k !== a.kid)!;
    const tokenByA = await signRetrievalToken(keys, ISS, grant, TTL, c.now());

    c.advance(JWKS_MAX_AGE_SECONDS); // A retires, B signs
    expect((await keys.signingKey()).kid).toBe(b);
    // A token A signed just before retiring still verifies against the published set.
    const jwks = await keys.publicJwks();
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual([a.kid, b].sort());
    await expect(jwtVerify(tokenByA.token, createLocalJWKSet(jwks), { currentDate: c.now() })).resolves.toBeDefined();
    await expect(verifyRetrievalToken(keys, ISS, tokenByA.token, 'RRK', c.now())).resolves.toMatchObject({ studyUid: '1.2.3.4', organization: 'RJE' });

    c.advance(TTL + 61); // every token of A has expired (with skew): A is no longer published
    expect((await keys.publicJwks()).keys.map((k) => k.kid)).toEqual([b]);
    await expect(verifyRetrievalToken(keys, ISS, lastOfA.token, 'RRK', c.now())).rejects.toMatchObject({ status: 401 });
  });

  it('when two registry nodes share the database, then they sign with the same key and publish the same set', async () => {
    const c = clock(new Date('2026-02-01T00:00:00Z'));
    const one = retrievalKeys(db, { rotationSeconds: ROTATION, tokenTtlSeconds: TTL, kek: KEK, now: c.now });
    const two = retrievalKeys(db, { rotationSeconds: ROTATION, tokenTtlSeconds: TTL, kek: KEK, now: c.now });
    const [k1, k2] = await Promise.all([one.signingKey(), two.signingKey()]);
    expect(k1.kid).toBe(k2.kid);
    const t = await signRetrievalToken(one, ISS, grant, TTL, c.now());
    await expect(verifyRetrievalToken(two, ISS, t.token, 'RRK', c.now())).resolves.toMatchObject({ subject: 'dr.jones' });
    expect((await db.query('select kid from retrieval_key')).rowCount).toBe(1);
  });

  it('when a token is checked, then expiry, another custodian, a foreign key and tampering are refused', async () => {
    const c = clock(new Date('2026-03-01T00:00:00Z'));
    const keys = retrievalKeys(db, { rotationSeconds: ROTATION, tokenTtlSeconds: TTL, kek: KEK, now: c.now });
    const t = await signRetrievalToken(keys, ISS, grant, TTL, c.now());
    await expect(verifyRetrievalToken(keys, ISS, t.token, 'RJE', c.now())).rejects.toThrow(/not for custodian RJE/);
    await expect(verifyRetrievalToken(keys, 'http://elsewhere', t.token, 'RRK', c.now())).rejects.toThrow(/could not be verified/);
    await expect(verifyRetrievalToken(keys, ISS, t.token, 'RRK', new Date(c.now().getTime() + (TTL + 31) * 1000))).rejects.toThrow(/expired/);
    const [h, p, sig] = t.token.split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), study_uid: '9.9.9' })).toString('base64url');
    await expect(verifyRetrievalToken(keys, ISS, `${h}.${forgedPayload}.${sig}`, 'RRK', c.now())).rejects.toThrow(/could not be verified/);
    const other = retrievalKeys(db, { rotationSeconds: ROTATION, tokenTtlSeconds: TTL, kek: KEK, now: () => new Date('2026-09-01T00:00:00Z') });
    await db.query('delete from retrieval_key');
    const foreign = await signRetrievalToken(other, ISS, grant, TTL, c.now());
    await db.query('delete from retrieval_key');
    keys.refresh();
    await expect(verifyRetrievalToken(keys, ISS, foreign.token, 'RRK', c.now())).rejects.toThrow(/could not be verified/);
  });
});

describe('signing keys at rest', () => {
  it('when a key is made, then its private half is stored sealed (no JWK in the table) and still signs tokens that verify', async () => {
    const keys = retrievalKeys(db, { rotationSeconds: ROTATION, tokenTtlSeconds: TTL, kek: KEK });
    const t = await signRetrievalToken(keys, ISS, grant, TTL);
    const [row] = (await db.query<{ kid: string; private_jwk: string }>('select kid, private_jwk from retrieval_key')).rows;
    expect(row!.private_jwk).toMatch(/^locus-kek1\./);
    expect(row!.private_jwk).not.toContain('"d"');
    expect(JSON.parse(openPrivateKey(KEK, row!.kid, row!.private_jwk))).toMatchObject({ kty: 'EC', crv: 'P-256', kid: row!.kid });
    await expect(verifyRetrievalToken(keys, ISS, t.token, 'RRK')).resolves.toMatchObject({ subject: 'dr.jones' });
  });

  it('when a node has another key-encryption key, then it refuses to sign and says why; a sealed key moved to another kid does not open', async () => {
    await signRetrievalToken(retrievalKeys(db, { rotationSeconds: ROTATION, tokenTtlSeconds: TTL, kek: KEK }), ISS, grant, TTL);
    const stranger = retrievalKeys(db, { rotationSeconds: ROTATION, tokenTtlSeconds: TTL, kek: keyEncryptionKey(randomBytes(32)) });
    await expect(stranger.signingKey()).rejects.toThrow(/LOCUS_KEY_ENCRYPTION_KEY/);
    const sealed = sealPrivateKey(KEK, 'kid-a', '{"secret":1}');
    expect(() => openPrivateKey(KEK, 'kid-b', sealed)).toThrow(/does not open/);
  });

  it('when a key was stored before keys were sealed, then it is sealed in place on first use and keeps signing under its kid', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = 'plain-key';
    const now = new Date();
    await db.query(
      'insert into retrieval_key (kid, created, not_before, retire_at, publish_until, public_jwk, private_jwk) values ($1, $2, $2, $3, $4, $5, $6)',
      [kid, new Date(now.getTime() - 1000), new Date(now.getTime() + 3_600_000), new Date(now.getTime() + 7_200_000), JSON.stringify({ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }), JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg: 'ES256' })],
    );
    const keys = retrievalKeys(db, { rotationSeconds: ROTATION, tokenTtlSeconds: TTL, kek: KEK });
    expect((await keys.signingKey()).kid).toBe(kid);
    const stored = (await db.query<{ private_jwk: string }>('select private_jwk from retrieval_key where kid = $1', [kid])).rows[0]!.private_jwk;
    expect(stored).toMatch(/^locus-kek1\./);
    const t = await signRetrievalToken(keys, ISS, grant, TTL);
    await expect(verifyRetrievalToken(keys, ISS, t.token, 'RRK')).resolves.toMatchObject({ subject: 'dr.jones' });
  });

  it('when no key-encryption key is configured, then PostgreSQL refuses to start and the embedded database keeps one, owner-only, in its data directory', () => {
    expect(() => loadKeyEncryptionKey(undefined, { databaseUrl: 'postgres://x@127.0.0.1/db', dataDir: '/nonexistent' })).toThrow(/LOCUS_KEY_ENCRYPTION_KEY: required with DATABASE_URL/);
    const dir = mkdtempSync(join(tmpdir(), 'locus-kek-'));
    try {
      const first = loadKeyEncryptionKey(undefined, { dataDir: dir });
      const again = loadKeyEncryptionKey(undefined, { dataDir: dir });
      expect(again).toEqual(first);
      expect(statSync(join(dir, 'retrieval-kek.key')).mode & 0o777).toBe(0o600);
      expect(parseKeyEncryptionKey(readFileSync(join(dir, 'retrieval-kek.key'), 'utf8'))).toEqual(first.key);
      const configured = randomBytes(32);
      expect(loadKeyEncryptionKey(configured, { databaseUrl: 'postgres://x@127.0.0.1/db', dataDir: dir }).key).toEqual(configured);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => loadResolveConfig({ LOCUS_KEY_ENCRYPTION_KEY: 'too-short' })).toThrow(/LOCUS_KEY_ENCRYPTION_KEY/);
    expect(loadResolveConfig({ LOCUS_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') }).keyEncryptionKey).toHaveLength(32);
  });
});

describe('resolve configuration', () => {
  it('when the environment is empty, then five-minute tokens, daily rotation and an OHIF-style viewer template', () => {
    expect(loadResolveConfig({})).toEqual({ tokenTtlSeconds: 300, keyRotationSeconds: 86400, viewerUrlTemplate: 'http://localhost:3000/viewer?StudyInstanceUIDs={StudyInstanceUID}', gatewayTimeoutMs: 30000, keyEncryptionKey: undefined });
  });

  it('when values are set, then they are used; when bad, then one clear ConfigError', () => {
    expect(loadResolveConfig({ LOCUS_RETRIEVAL_TOKEN_TTL: '120', LOCUS_VIEWER_URL_TEMPLATE: 'https://ohif.example.nhs.uk/viewer?StudyInstanceUIDs={StudyInstanceUID}&url={dicomweb}' })).toMatchObject({ tokenTtlSeconds: 120 });
    expect(() => loadResolveConfig({ LOCUS_RETRIEVAL_TOKEN_TTL: '5' })).toThrow(ConfigError);
    expect(() => loadResolveConfig({ LOCUS_VIEWER_URL_TEMPLATE: 'javascript:alert(1)//{StudyInstanceUID}' })).toThrow(/LOCUS_VIEWER_URL_TEMPLATE/);
    expect(() => loadResolveConfig({ LOCUS_VIEWER_URL_TEMPLATE: 'https://viewer.example/' })).toThrow(/StudyInstanceUID/);
  });

  it('when the template is expanded, then every placeholder is URL-encoded', () => {
    expect(viewerUrl('https://v.example/viewer?StudyInstanceUIDs={StudyInstanceUID}&c={custodian}&url={dicomweb}', { studyUid: '1.2.3', custodian: 'RRK', dicomweb: 'http://r/dicomweb/RRK' })).toBe(
      'https://v.example/viewer?StudyInstanceUIDs=1.2.3&c=RRK&url=http%3A%2F%2Fr%2Fdicomweb%2FRRK',
    );
  });
});
