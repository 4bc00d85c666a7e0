import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config';

/**
 * Encryption at rest of the registry's retrieval signing keys (retrieval-keys.ts). The private keys
 * live in the database so that every API node signs with the same key; sealed with a
 * key-encryption key (KEK) that is not in the database, a dump or backup of it does not let anyone
 * mint retrieval tokens that trusts' PACS gateways would accept.
 *
 * AES-256-GCM (NIST SP 800-38D) with a random 96-bit IV per key, and the key id (`kid`) as
 * additional authenticated data, so a sealed key copied onto another row does not open.
 */
export interface KeyEncryptionKey {
  /** A fingerprint of the KEK (not secret): sealed keys name the KEK that opens them. */
  id: string;
  key: Buffer;
}

const FORMAT = 'locus-kek1';
const FILE = 'retrieval-kek.key';

export function keyEncryptionKey(key: Buffer): KeyEncryptionKey {
  if (key.length !== 32) throw new Error('a key-encryption key is 32 bytes');
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 16), key };
}

/** Decodes LOCUS_KEY_ENCRYPTION_KEY: 32 bytes as base64 or base64url. */
export function parseKeyEncryptionKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) return undefined;
  const key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return key.length === 32 ? key : undefined;
}

/**
 * The KEK this node uses: the configured one; for the embedded database, one kept in its data
 * directory beside it (made on first start, readable by the owner only). A PostgreSQL deployment
 * must configure it, the same on every node: without it each node would seal keys the others
 * cannot open.
 */
export function loadKeyEncryptionKey(configured: Buffer | undefined, where: { databaseUrl?: string; dataDir: string }): KeyEncryptionKey {
  if (configured) return keyEncryptionKey(configured);
  if (where.databaseUrl) {
    throw new ConfigError(
      'invalid configuration: LOCUS_KEY_ENCRYPTION_KEY: required with DATABASE_URL (32 random bytes, base64, the same on every node; e.g. openssl rand -base64 32): it encrypts the retrieval signing keys kept in the database',
    );
  }
  mkdirSync(where.dataDir, { recursive: true });
  const file = join(where.dataDir, FILE);
  try {
    // Exclusive create: two processes starting on one data directory end up with the same key.
    writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as { code?: string }).code !== 'EEXIST') throw e;
  }
  const key = parseKeyEncryptionKey(readFileSync(file, 'utf8'));
  if (!key) throw new ConfigError(`invalid configuration: ${file} does not hold a 32-byte base64 key-encryption key`);
  return keyEncryptionKey(key);
}

const b64 = (b: Buffer): string => b.toString('base64url');

export function sealPrivateKey(kek: KeyEncryptionKey, kid: string, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek.key, iv);
  cipher.setAAD(Buffer.from(kid, 'utf8'));
  const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [FORMAT, kek.id, b64(iv), b64(sealed), b64(cipher.getAuthTag())].join('.');
}

export function isSealed(stored: string): boolean {
  return stored.startsWith(`${FORMAT}.`);
}

export class KeyEncryptionError extends Error {}

/** Opens a sealed private key; a key stored before sealing existed (plain JSON) is returned as it is. */
export function openPrivateKey(kek: KeyEncryptionKey, kid: string, stored: string): string {
  if (!isSealed(stored)) return stored;
  const [, kekId, iv, sealed, tag] = stored.split('.');
  if (kekId !== kek.id) {
    throw new KeyEncryptionError(`retrieval signing key ${kid} was sealed with key-encryption key ${kekId}, and this node has ${kek.id}: every node needs the same LOCUS_KEY_ENCRYPTION_KEY`);
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek.key, Buffer.from(iv ?? '', 'base64url'));
    decipher.setAAD(Buffer.from(kid, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag ?? '', 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(sealed ?? '', 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new KeyEncryptionError(`retrieval signing key ${kid} does not open with key-encryption key ${kek.id}: it was altered or moved to another key id`);
  }
}
