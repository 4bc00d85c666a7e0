import { z } from 'zod';
import { parseEnv } from '../config';
import { parseKeyEncryptionKey } from './key-encryption';

/**
 * Settings of `$resolve`, the retrieval tokens and the DICOMweb gateway, read from the
 * environment with zod like the core configuration: a bad value is one clear line at start-up.
 */
const envSchema = z.object({
  /** Lifetime of a retrieval token in seconds (issue 6: five minutes by default). */
  LOCUS_RETRIEVAL_TOKEN_TTL: z.coerce.number().int().min(30).max(3600).default(300),
  /** How long one signing key signs before the next takes over, in seconds (default a day). */
  LOCUS_RETRIEVAL_KEY_ROTATION: z.coerce.number().int().min(120).max(90 * 86400).default(86400),
  /**
   * The viewer launch URL. Placeholders: {StudyInstanceUID}, {custodian} (ODS code) and
   * {dicomweb} (this registry's gateway root for the custodian), each URL-encoded.
   */
  LOCUS_VIEWER_URL_TEMPLATE: z
    .string()
    .default('http://localhost:3000/viewer?StudyInstanceUIDs={StudyInstanceUID}')
    .refine((t) => /^https?:\/\/[^\s]+$/.test(t) && t.includes('{StudyInstanceUID}'), 'must be an http(s) URL containing {StudyInstanceUID}'),
  /** Upstream (custodian PACS) silence in milliseconds before the gateway gives up: 504 before the first byte. */
  LOCUS_GATEWAY_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  /**
   * Key-encryption key for the retrieval signing keys at rest: 32 random bytes, base64. Required
   * with DATABASE_URL (the same on every node); the embedded default keeps one in its data directory.
   */
  LOCUS_KEY_ENCRYPTION_KEY: z
    .string()
    .optional()
    .refine((v) => v === undefined || parseKeyEncryptionKey(v) !== undefined, 'must be 32 bytes, base64 (e.g. openssl rand -base64 32)'),
});

export interface ResolveConfig {
  tokenTtlSeconds: number;
  keyRotationSeconds: number;
  viewerUrlTemplate: string;
  gatewayTimeoutMs: number;
  keyEncryptionKey?: Buffer;
}

export function loadResolveConfig(env: NodeJS.ProcessEnv = process.env): ResolveConfig {
  const e = parseEnv(envSchema, env);
  return {
    tokenTtlSeconds: e.LOCUS_RETRIEVAL_TOKEN_TTL,
    keyRotationSeconds: e.LOCUS_RETRIEVAL_KEY_ROTATION,
    viewerUrlTemplate: e.LOCUS_VIEWER_URL_TEMPLATE,
    gatewayTimeoutMs: e.LOCUS_GATEWAY_TIMEOUT_MS,
    keyEncryptionKey: e.LOCUS_KEY_ENCRYPTION_KEY === undefined ? undefined : parseKeyEncryptionKey(e.LOCUS_KEY_ENCRYPTION_KEY),
  };
}

/** Expands the viewer launch template for one study. */
export function viewerUrl(template: string, v: { studyUid: string; custodian: string; dicomweb: string }): string {
  return template
    .replaceAll('{StudyInstanceUID}', encodeURIComponent(v.studyUid))
    .replaceAll('{custodian}', encodeURIComponent(v.custodian))
    .replaceAll('{dicomweb}', encodeURIComponent(v.dicomweb));
}
