/**
 * The registry side of the publisher, over fhir-kit-client: transaction Bundles, the Endpoint
 * look-up, and bearer tokens (static, or OAuth 2.0 client credentials, RFC 6749 §4.4).
 * fhir-kit-client is ESM-only, so it is loaded with a dynamic import() (kept as import() in
 * the CommonJS build by TypeScript's node16+ module mode).
 */
import { z } from 'zod';
import { ENDPOINT_CONNECTION_TYPE_SYSTEM, ODS_SYSTEM } from '../registry/codes';
import { isRetryableStatus, parseRetryAfter, withRetry, type FailureInfo, type RetryPolicy } from './retry';

export interface TokenSource { get(): Promise<string | undefined>; refresh(): Promise<string | undefined>; canRefresh: boolean }

export function staticToken(token: string | undefined): TokenSource {
  return { get: async () => token, refresh: async () => token, canRefresh: false };
}

const tokenResponseSchema = z.object({ access_token: z.string().min(1) }).loose();

/** Client credentials with client_secret_basic (RFC 6749 §2.3.1, which servers MUST support). */
export function clientCredentialsToken(tokenUrl: string, clientId: string, clientSecret: string, fetchImpl: typeof fetch = fetch): TokenSource {
  let current: string | undefined;
  const refresh = async (): Promise<string> => {
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
    const res = await fetchImpl(tokenUrl, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: 'grant_type=client_credentials',
    });
    if (!res.ok) throw new Error(`token endpoint answered HTTP ${res.status}`);
    current = tokenResponseSchema.parse(await res.json()).access_token;
    return current;
  };
  return { get: async () => current ?? refresh(), refresh, canRefresh: true };
}

/** A failed HTTP request as fhir-kit-client reports it. */
interface HttpError { response?: { status?: number; data?: unknown }; config?: { headers?: { get?(name: string): string | null } } }

export function httpStatusOf(err: unknown): number | undefined {
  const status = (err as HttpError | undefined)?.response?.status;
  return typeof status === 'number' ? status : undefined;
}

export function classifyFhirError(err: unknown): FailureInfo {
  const status = httpStatusOf(err);
  if (status !== undefined) {
    const retryAfter = (err as HttpError).config?.headers?.get?.('retry-after');
    return { retryable: isRetryableStatus(status), retryAfterMs: parseRetryAfter(retryAfter), reason: `HTTP ${status}` };
  }
  // fetch() rejects with a TypeError for network failures (connection refused/reset, DNS).
  if (err instanceof TypeError) return { retryable: true, reason: `network error: ${String((err as { cause?: unknown }).cause ?? err.message)}` };
  return { retryable: false, reason: err instanceof Error ? err.message : String(err) };
}

/**
 * The OperationOutcome a server sent with an error, reduced to codes: diagnostics can carry patient
 * data (an NHS number in a message), so only issue codes, Spine codes and expressions are kept.
 */
export function describeHttpFailure(err: unknown): string {
  const status = httpStatusOf(err);
  if (status === undefined) return classifyFhirError(err).reason;
  const data = (err as HttpError).response?.data as { resourceType?: string; issue?: Array<{ code?: string; expression?: string[]; details?: { coding?: Array<{ code?: string }> } }> } | undefined;
  const issues = data?.resourceType === 'OperationOutcome' ? data.issue ?? [] : [];
  const parts = issues.slice(0, 3).map((i) => [i.code, i.details?.coding?.[0]?.code, i.expression?.join(',')].filter(Boolean).join(' '));
  return `HTTP ${status}${parts.length ? ` (${parts.join('; ')})` : ''}`;
}

export interface EndpointInfo { reference: string; address: string }

export interface RegistryClient {
  transaction(bundle: object): Promise<unknown>;
  findWadoEndpoint(ods: string): Promise<EndpointInfo>;
  readEndpoint(reference: string): Promise<EndpointInfo>;
}

const endpointSchema = z.object({ resourceType: z.literal('Endpoint'), id: z.string(), address: z.string().min(1) }).loose();
const searchSetSchema = z.object({ resourceType: z.literal('Bundle'), entry: z.array(z.object({ resource: z.unknown() }).loose()).optional() }).loose();

interface FhirKitClient {
  transaction(p: { body: object }): Promise<unknown>;
  search(p: { resourceType: string; searchParams: Record<string, string> }): Promise<unknown>;
  read(p: { resourceType: string; id: string }): Promise<unknown>;
  bearerToken: string;
}

export async function createRegistryClient(baseUrl: string, tokens: TokenSource, retry: RetryPolicy): Promise<RegistryClient> {
  const { Client } = await import('fhir-kit-client');
  const client = new Client({ baseUrl }) as unknown as FhirKitClient;
  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    const token = await tokens.get();
    if (token) client.bearerToken = token;
    try {
      return await withRetry(fn, classifyFhirError, retry);
    } catch (err) {
      // An expired client-credentials token: fetch a fresh one and try once more.
      if (httpStatusOf(err) !== 401 || !tokens.canRefresh) throw err;
      client.bearerToken = (await tokens.refresh()) ?? '';
      return withRetry(fn, classifyFhirError, retry);
    }
  };
  const toInfo = (resource: unknown): EndpointInfo => {
    const ep = endpointSchema.parse(resource);
    return { reference: `Endpoint/${ep.id}`, address: ep.address };
  };
  return {
    transaction: (bundle) => call(() => client.transaction({ body: bundle })),
    readEndpoint: async (reference) => toInfo(await call(() => client.read({ resourceType: 'Endpoint', id: reference.replace(/^Endpoint\//, '') }))),
    findWadoEndpoint: async (ods) => {
      const bundle = searchSetSchema.parse(await call(() => client.search({
        resourceType: 'Endpoint',
        searchParams: { 'organization:identifier': `${ODS_SYSTEM}|${ods}`, 'connection-type': 'dicom-wado-rs' },
      })));
      const first = bundle.entry?.map((e) => e.resource).find((r) => (r as { resourceType?: string } | undefined)?.resourceType === 'Endpoint');
      if (!first) throw new Error(`no ${ENDPOINT_CONNECTION_TYPE_SYSTEM}#dicom-wado-rs Endpoint for organisation ${ods}; give --endpoint and --wado`);
      return toInfo(first);
    },
  };
}
