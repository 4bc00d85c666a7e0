import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import type { Database, Queryable } from '../store/database';
import type { KeyEncryptionKey } from './key-encryption';
import { isSealed, openPrivateKey, sealPrivateKey } from './key-encryption';

/** How long a new key is published before it signs: longer than verifiers may cache the key set. */
export const JWKS_MAX_AGE_SECONDS = 60;
/** Clock skew a verifier may allow on `exp`. */
const SKEW_SECONDS = 60;
/** The in-memory copy of the key table is re-read at least this often. */
const CACHE_MS = 30_000;

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
}

interface KeyRow {
  kid: string;
  created: Date;
  not_before: Date;
  retire_at: Date;
  publish_until: Date;
  public_jwk: string;
  private_jwk: string;
}

export interface RetrievalKeysOptions {
  rotationSeconds: number;
  tokenTtlSeconds: number;
  /** Seals the private keys at rest (key-encryption.ts). */
  kek: KeyEncryptionKey;
  now?: () => Date;
}

export interface RetrievalKeys {
  /** The key that signs now (creating or rotating keys as needed). */
  signingKey(): Promise<SigningKey>;
  /** Public keys a verifier must know now: the signer, its published successor, and retired keys whose tokens may still live. */
  publicJwks(): Promise<{ keys: JWK[] }>;
  /** Forget the cached table (after an unknown kid, so a key another node just made is found). */
  refresh(): void;
}

async function newKey(): Promise<{ kid: string; publicJwk: JWK; privateJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = randomUUID();
  return {
    kid,
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'ES256' },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' },
  };
}

const plus = (d: Date, seconds: number): Date => new Date(d.getTime() + seconds * 1000);

/**
 * Key rotation (issue 6). Each key signs for `rotationSeconds`; its successor is created
 * JWKS_MAX_AGE_SECONDS before it takes over so that verifiers caching the key set already hold
 * it; a retired key stays published until every token it signed has expired. Nodes agree
 * through the table; an advisory lock makes one of them create each key.
 */
export function retrievalKeys(db: Database, options: RetrievalKeysOptions): RetrievalKeys {
  const now = options.now ?? ((): Date => new Date());
  let cached: { at: number; rows: KeyRow[] } | undefined;
  const imported = new Map<string, Promise<CryptoKey>>();

  const load = async (q: Queryable, at: Date): Promise<KeyRow[]> =>
    (await q.query<KeyRow>('select kid, created, not_before, retire_at, publish_until, public_jwk, private_jwk from retrieval_key where publish_until > $1 order by not_before', [at])).rows;

  const signerOf = (rows: KeyRow[], at: Date): KeyRow | undefined =>
    rows.filter((r) => r.not_before <= at && r.retire_at > at).sort((a, b) => b.not_before.getTime() - a.not_before.getTime())[0];

  /** True when the table lacks a signer now, or the signer's successor is due to be published. */
  const needsWork = (rows: KeyRow[], at: Date): boolean => {
    const signer = signerOf(rows, at);
    if (!signer) return true;
    const successorDue = plus(signer.retire_at, -JWKS_MAX_AGE_SECONDS) <= at;
    return successorDue && !rows.some((r) => r.not_before >= signer.retire_at);
  };

  const rotate = async (at: Date): Promise<KeyRow[]> =>
    db.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock(4242006)');
      let rows = await load(tx, at);
      if (!needsWork(rows, at)) return rows;
      const signer = signerOf(rows, at);
      // The successor starts when the signer retires; with no signer at all, a key starts now.
      const notBefore = signer ? signer.retire_at : at;
      const retireAt = plus(notBefore, options.rotationSeconds);
      const k = await newKey();
      await tx.query(
        'insert into retrieval_key (kid, created, not_before, retire_at, publish_until, public_jwk, private_jwk) values ($1, $2, $3, $4, $5, $6, $7)',
        [k.kid, at, notBefore, retireAt, plus(retireAt, options.tokenTtlSeconds + SKEW_SECONDS), JSON.stringify(k.publicJwk), sealPrivateKey(options.kek, k.kid, JSON.stringify(k.privateJwk))],
      );
      rows = await load(tx, at);
      return rows;
    });

  /**
   * Keys written before they were sealed at rest are sealed in place the first time this process
   * reads the table (the update matches the plain text it read, so nodes doing it at once agree).
   */
  let sealedOld = false;
  const sealPlainKeys = async (rows: KeyRow[]): Promise<void> => {
    for (const r of rows.filter((x) => !isSealed(x.private_jwk))) {
      const sealed = sealPrivateKey(options.kek, r.kid, r.private_jwk);
      await db.query('update retrieval_key set private_jwk = $1 where kid = $2 and private_jwk = $3', [sealed, r.kid, r.private_jwk]);
      r.private_jwk = sealed;
    }
    sealedOld = true;
  };

  /** The live keys, judged at one instant (the same one the caller then picks by). */
  const current = async (): Promise<{ rows: KeyRow[]; at: Date }> => {
    const at = now();
    let rows = cached && Date.now() - cached.at < CACHE_MS ? cached.rows.filter((r) => r.publish_until > at) : await load(db, at);
    if (!sealedOld) await sealPlainKeys(rows);
    if (needsWork(rows, at)) rows = await rotate(at);
    cached = { at: Date.now(), rows };
    return { rows, at };
  };

  return {
    async signingKey(): Promise<SigningKey> {
      const { rows, at } = await current();
      const row = signerOf(rows, at);
      if (!row) throw new Error('no retrieval signing key is available');
      let key = imported.get(row.kid);
      if (!key) {
        key = importJWK(JSON.parse(openPrivateKey(options.kek, row.kid, row.private_jwk)) as JWK, 'ES256') as Promise<CryptoKey>;
        imported.set(row.kid, key);
      }
      return { kid: row.kid, privateKey: await key };
    },
    async publicJwks(): Promise<{ keys: JWK[] }> {
      const { rows, at } = await current();
      return { keys: rows.filter((r) => r.created <= at && r.publish_until > at).map((r) => JSON.parse(r.public_jwk) as JWK) };
    },
    refresh(): void {
      cached = undefined;
    },
  };
}
