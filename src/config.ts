import { resolve } from 'node:path';
import { z } from 'zod';

const issuerSchema = z
  .object({
    issuer: z.string().min(1),
    jwksUri: z.url().optional(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }).optional(),
    /** ODS codes this issuer may assert as the caller's organisation; '*' for a national issuer. */
    organizations: z.array(z.string().regex(/^[A-Z0-9*]{1,10}$/)).min(1),
  })
  .refine((i) => Boolean(i.jwksUri) !== Boolean(i.jwks), { message: 'each issuer needs exactly one of jwksUri or jwks' });
export type TrustedIssuer = z.infer<typeof issuerSchema>;

const booleanString = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('127.0.0.1'),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  LOCUS_DATA_DIR: z.string().default('./data'),
  LOCUS_BASE_URL: z.url().optional(),
  LOCUS_AUDIENCE: z.string().optional(),
  LOCUS_TRUSTED_ISSUERS: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (!s) return [];
      try {
        return z.array(issuerSchema).parse(JSON.parse(s));
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `not a JSON array of issuers: ${e instanceof Error ? e.message.split('\n')[0] : e}` });
        return z.NEVER;
      }
    }),
  LOCUS_DEV_ISSUER: booleanString.optional(),
  LOCUS_ALLOWED_ALGS: z.string().default('RS256,ES256,PS256,EdDSA'),
  LOCUS_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
  LOCUS_MAX_PAGE_SIZE: z.coerce.number().int().min(1).max(1000).default(100),
  LOCUS_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOCUS_AUDIT: booleanString.default(true),
});

export interface Config {
  port: number;
  host: string;
  databaseUrl?: string;
  poolSize: number;
  dataDir: string;
  baseUrl: string;
  audience: string;
  trustedIssuers: TrustedIssuer[];
  devIssuer: boolean;
  allowedAlgs: string[];
  maxBodyBytes: number;
  maxPageSize: number;
  defaultPageSize: number;
  logLevel: z.infer<typeof envSchema>['LOCUS_LOG_LEVEL'];
  /** Benchmark-only switch: measure the cost of auditing. Never turn it off in service. */
  audit: boolean;
}

export class ConfigError extends Error {}

/** Validates environment variables against a zod schema; a bad value is one clear line. */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ConfigError(`invalid configuration: ${first?.path.join('.') ?? ''}: ${first?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** Reads and validates the environment; a bad value is one clear line, and no start. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const e = parseEnv(envSchema, env);
  const baseUrl = (e.LOCUS_BASE_URL ?? `http://localhost:${e.PORT}`).replace(/\/$/, '');
  const algs = e.LOCUS_ALLOWED_ALGS.split(',').map((a) => a.trim()).filter(Boolean);
  const forbidden = algs.filter((a) => a === 'none' || a.startsWith('HS'));
  if (forbidden.length > 0) {
    throw new ConfigError(`invalid configuration: LOCUS_ALLOWED_ALGS: ${forbidden.join(',')} not allowed (asymmetric algorithms only)`);
  }
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    poolSize: e.DATABASE_POOL_SIZE,
    dataDir: resolve(e.LOCUS_DATA_DIR),
    baseUrl,
    audience: e.LOCUS_AUDIENCE ?? `${baseUrl}/fhir`,
    trustedIssuers: e.LOCUS_TRUSTED_ISSUERS,
    // The development issuer is on by default only for the embedded database.
    devIssuer: e.LOCUS_DEV_ISSUER ?? !e.DATABASE_URL,
    allowedAlgs: algs,
    maxBodyBytes: e.LOCUS_MAX_BODY_BYTES,
    maxPageSize: e.LOCUS_MAX_PAGE_SIZE,
    defaultPageSize: Math.min(20, e.LOCUS_MAX_PAGE_SIZE),
    logLevel: e.LOCUS_LOG_LEVEL,
    audit: e.LOCUS_AUDIT,
  };
}
