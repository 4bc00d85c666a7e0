import { z } from 'zod';
import { parseEnv } from '../config';

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const envSchema = z.object({
  LOCUS_NOTIFY: bool.default(true),
  LOCUS_NOTIFY_MAX_FAILURES: z.coerce.number().int().min(1).max(1000).default(8),
  LOCUS_NOTIFY_BACKOFF_MS: z.coerce.number().int().min(10).max(600_000).default(1000),
  LOCUS_NOTIFY_BACKOFF_MAX_MS: z.coerce.number().int().min(10).max(86_400_000).default(300_000),
  LOCUS_NOTIFY_POLL_MS: z.coerce.number().int().min(5).max(60_000).default(200),
  LOCUS_NOTIFY_LEASE_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  LOCUS_NOTIFY_BATCH: z.coerce.number().int().min(1).max(1000).default(200),
  LOCUS_NOTIFY_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  LOCUS_NOTIFY_ALLOW_HTTP: bool.default(false),
  LOCUS_NOTIFY_ALLOW_PRIVATE: bool.default(false),
});

export interface NotifyOptions {
  /** Run the delivery worker in this process. */
  enabled: boolean;
  /** Consecutive failures after which a subscription goes to `error` (recoverable by PUT status=requested). */
  maxFailures: number;
  backoffMs: number;
  backoffMaxMs: number;
  pollMs: number;
  /** How long a node owns a subscription's delivery before another may take over (crash recovery). */
  leaseMs: number;
  /** Events per notification Bundle. */
  batch: number;
  timeoutMs: number;
  /** Plain-http rest-hook endpoints (loopback tests only): production requires https. */
  allowHttp: boolean;
  /** Rest-hook endpoints on private, loopback or link-local addresses (public-address.ts): refused unless set. */
  allowPrivate: boolean;
}

export function loadNotifyOptions(env: NodeJS.ProcessEnv = process.env): NotifyOptions {
  const e = parseEnv(envSchema, env);
  return {
    enabled: e.LOCUS_NOTIFY,
    maxFailures: e.LOCUS_NOTIFY_MAX_FAILURES,
    backoffMs: e.LOCUS_NOTIFY_BACKOFF_MS,
    backoffMaxMs: e.LOCUS_NOTIFY_BACKOFF_MAX_MS,
    pollMs: e.LOCUS_NOTIFY_POLL_MS,
    leaseMs: e.LOCUS_NOTIFY_LEASE_MS,
    batch: e.LOCUS_NOTIFY_BATCH,
    timeoutMs: e.LOCUS_NOTIFY_TIMEOUT_MS,
    allowHttp: e.LOCUS_NOTIFY_ALLOW_HTTP,
    allowPrivate: e.LOCUS_NOTIFY_ALLOW_PRIVATE,
  };
}
