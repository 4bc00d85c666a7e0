import { z } from 'zod';
import { ConfigError } from '../config';

const OID_URN = /^urn:oid:[0-2](\.(0|[1-9]\d{0,30})){1,40}$/;
const ods = z.string().regex(/^[A-Z0-9]{1,10}$/, 'must be an ODS code');

const peerSchema = z
  .object({
    /** The peer's homeCommunityId (MHD / XCA), a urn:oid:. */
    communityId: z.string().regex(OID_URN, 'must be a urn:oid: community id'),
    name: z.string().min(1).max(128),
    fhirBase: z.url().transform((u) => u.replace(/\/$/, '')),
    /** The peer registry's organisation: the provider in the governing sharing agreement. */
    organization: ods,
    /** sharing_agreement.id that governs what Locus takes from this peer. */
    agreementId: z.string().min(1).max(128),
    /** `aud` of the tokens Locus signs for it (default: its FHIR base). */
    audience: z.string().min(1).optional(),
    timeoutMs: z.number().int().min(50).max(60_000).optional(),
  })
  .strict();
export type PeerConfig = z.infer<typeof peerSchema>;

const jwkSchema = z.object({ kty: z.string(), d: z.string(), kid: z.string().optional(), alg: z.string().optional() }).loose();

const envSchema = z.object({
  LOCUS_HOME_COMMUNITY_ID: z.string().regex(OID_URN, 'must be a urn:oid: community id').optional(),
  LOCUS_FEDERATION_ORG: ods.optional(),
  LOCUS_FEDERATION_ISSUER: z.string().min(1).optional(),
  LOCUS_FEDERATION_CLIENT_ID: z.string().min(1).optional(),
  LOCUS_FEDERATION_KEY: z.string().optional(),
  LOCUS_FEDERATION_PEERS: z.string().optional(),
  LOCUS_FEDERATION_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(3000),
});

export interface FederationConfig {
  homeCommunityId: string;
  /** This registry's own organisation as peers know it (the recipient in their agreements). */
  organization: string;
  /** `iss` of the client-credentials JWTs Locus signs; peers trust it with Locus's public key. */
  issuer: string;
  clientId: string;
  /** Locus's private signing key (JWK with `d`). */
  privateJwk: z.infer<typeof jwkSchema>;
  timeoutMs: number;
  peers: PeerConfig[];
}

function parseJson<T>(name: string, text: string, schema: z.ZodType<T>): T {
  try {
    return schema.parse(JSON.parse(text));
  } catch (e) {
    const msg = e instanceof z.ZodError ? `${e.issues[0]?.path.join('.')}: ${e.issues[0]?.message}` : e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new ConfigError(`invalid configuration: ${name}: ${msg}`);
  }
}

/** Federation is on when LOCUS_HOME_COMMUNITY_ID is set; then every other setting must be valid. */
export function loadFederationConfig(env: NodeJS.ProcessEnv = process.env): FederationConfig | undefined {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ConfigError(`invalid configuration: ${first?.path.join('.') ?? ''}: ${first?.message ?? 'invalid'}`);
  }
  const e = parsed.data;
  if (!e.LOCUS_HOME_COMMUNITY_ID) return undefined;
  if (!e.LOCUS_FEDERATION_ORG) throw new ConfigError('invalid configuration: LOCUS_FEDERATION_ORG: required when LOCUS_HOME_COMMUNITY_ID is set');
  if (!e.LOCUS_FEDERATION_KEY) throw new ConfigError('invalid configuration: LOCUS_FEDERATION_KEY: required (a private JWK) when LOCUS_HOME_COMMUNITY_ID is set');
  const peers = e.LOCUS_FEDERATION_PEERS ? parseJson('LOCUS_FEDERATION_PEERS', e.LOCUS_FEDERATION_PEERS, z.array(peerSchema).max(50)) : [];
  const ids = new Set<string>();
  for (const p of peers) {
    if (ids.has(p.communityId) || p.communityId === e.LOCUS_HOME_COMMUNITY_ID) throw new ConfigError(`invalid configuration: LOCUS_FEDERATION_PEERS: community ${p.communityId} appears twice`);
    ids.add(p.communityId);
  }
  return {
    homeCommunityId: e.LOCUS_HOME_COMMUNITY_ID,
    organization: e.LOCUS_FEDERATION_ORG,
    issuer: e.LOCUS_FEDERATION_ISSUER ?? `urn:locus:federation:${e.LOCUS_FEDERATION_ORG}`,
    clientId: e.LOCUS_FEDERATION_CLIENT_ID ?? `locus-${e.LOCUS_FEDERATION_ORG.toLowerCase()}`,
    privateJwk: parseJson('LOCUS_FEDERATION_KEY', e.LOCUS_FEDERATION_KEY, jwkSchema),
    timeoutMs: e.LOCUS_FEDERATION_TIMEOUT_MS,
    peers,
  };
}
