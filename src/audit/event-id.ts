import { randomFillSync } from 'node:crypto';

const bytes = Buffer.alloc(16);
/** Random bytes drawn 4 KiB at a time (a call into the CSPRNG per id costs more than the id). */
const pool = Buffer.alloc(4096);
let used = pool.length;

/**
 * A UUID version 7 (RFC 9562 §5.7): 48 bits of Unix time in milliseconds, then random bits. Audit
 * event ids are indexed (read by id); time-ordered ids make each insert land at the right-hand
 * edge of that index instead of on a random leaf page, which for a trail of hundreds of millions
 * of events is the difference between one hot page and a full-page image in the WAL per insert.
 */
export function timeOrderedUuid(now: number = Date.now()): string {
  if (used + 10 > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  pool.copy(bytes, 6, used, used + 10);
  used += 10;
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
