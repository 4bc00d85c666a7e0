import { randomBytes } from 'node:crypto';

// Servers under test run as in service: a PostgreSQL deployment must be given the key that seals
// its retrieval signing keys at rest (src/resolve/key-encryption.ts). One per test process; the
// Locus processes a test starts inherit it, so a restart over the same database opens its keys.
process.env.LOCUS_KEY_ENCRYPTION_KEY ??= randomBytes(32).toString('base64');
