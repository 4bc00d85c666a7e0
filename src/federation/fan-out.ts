import { z } from 'zod';
import { CATEGORY_REPORT, CATEGORY_STUDY, SNOMED_SYSTEM } from '../registry/codes';
import { NHS_NUMBER_SYSTEM } from '../registry/nhs-number';
import type { PeerConfig } from './federation-config';

/** MHD homeCommunityId extension (the IG's official URL spells it ihe-HomeCommunityId; value is an oid). */
export const HOME_COMMUNITY_ID_URL = 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-HomeCommunityId';

export type PeerStatus = 'ok' | 'timeout' | 'unreachable' | 'http-error' | 'invalid' | 'no-agreement';

export interface PeerOutcome {
  peer: PeerConfig;
  status: PeerStatus;
  /** Bundle entries to merge, each resource marked with the peer's homeCommunityId. */
  entries: Record<string, unknown>[];
  /** Why the peer contributed nothing (no patient data: status codes and counts only). */
  detail?: string;
  ms: number;
}

export interface PeerQuery {
  type: string;
  params: [string, string][];
  patients: string[];
  /** The governing agreement's categories (empty: all). */
  categories: string[];
  token: string;
  timeoutMs: number;
}

interface SearchClient {
  search(p: { resourceType: string; searchParams: Record<string, string | string[]>; options?: { signal?: AbortSignal } }): Promise<unknown>;
}
type ClientCtor = new (c: { baseUrl: string; customHeaders?: Record<string, string> }) => SearchClient;

let clientCtor: Promise<ClientCtor> | undefined;
/** fhir-kit-client is ESM-only: loaded once with import() (kept as import() by node16 module mode). */
function loadClient(): Promise<ClientCtor> {
  clientCtor ??= import('fhir-kit-client').then((m) => m.Client as unknown as ClientCtor);
  return clientCtor;
}

const bundleSchema = z
  .object({
    resourceType: z.literal('Bundle'),
    type: z.literal('searchset'),
    entry: z.array(z.object({ fullUrl: z.string().optional(), resource: z.object({ resourceType: z.string(), id: z.string().optional() }).loose(), search: z.object({ mode: z.string().optional() }).loose().optional() }).loose()).max(1000).optional(),
  })
  .loose();

function searchParamsOf(params: [string, string][]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of params) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function subjectNhs(resource: Record<string, unknown>): string | undefined {
  const id = (resource.subject as { identifier?: { system?: string; value?: string } } | undefined)?.identifier;
  return id?.system === NHS_NUMBER_SYSTEM ? id.value : undefined;
}

function categoryOf(resource: Record<string, unknown>): string {
  if (resource.resourceType !== 'DocumentReference') return CATEGORY_STUDY;
  const codings = ((resource.category as { coding?: { system?: string; code?: string }[] }[] | undefined) ?? []).flatMap((c) => c.coding ?? []);
  return codings.some((c) => c.system === SNOMED_SYSTEM && c.code === CATEGORY_REPORT) ? CATEGORY_REPORT : CATEGORY_STUDY;
}

export function markCommunity(resource: Record<string, unknown>, communityId: string): Record<string, unknown> {
  const others = ((resource.extension as { url?: string }[] | undefined) ?? []).filter((e) => e.url !== HOME_COMMUNITY_ID_URL);
  return { ...resource, extension: [...others, { url: HOME_COMMUNITY_ID_URL, valueOid: communityId }] };
}

/**
 * Checks a peer's answer before anything of it is merged: a searchset of the type asked for,
 * every pointer about the patient asked for (anything else is garbage, and all of it is dropped),
 * and only the categories the governing agreement covers.
 */
export function acceptAnswer(peer: PeerConfig, q: PeerQuery, body: unknown): { entries: Record<string, unknown>[] } | { invalid: string } {
  const parsed = bundleSchema.safeParse(body);
  if (!parsed.success) return { invalid: 'the answer is not a searchset Bundle' };
  const entries: Record<string, unknown>[] = [];
  for (const e of parsed.data.entry ?? []) {
    const mode = e.search?.mode ?? 'match';
    const r = e.resource as Record<string, unknown>;
    if (mode === 'outcome') continue;
    if (mode === 'match' && r.resourceType === q.type) {
      const nhs = subjectNhs(r);
      if (!nhs || !q.patients.includes(nhs)) return { invalid: 'the answer holds pointers for another patient' };
      if (q.categories.length > 0 && !q.categories.includes(categoryOf(r))) continue;
    } else if (!(mode === 'include' && r.resourceType === 'Endpoint')) {
      return { invalid: `the answer holds an unexpected ${String(r.resourceType).slice(0, 40)} entry` };
    }
    const fullUrl = e.fullUrl ?? `${peer.fhirBase}/${String(r.resourceType)}/${String(r.id ?? '')}`;
    entries.push({ fullUrl, resource: markCommunity(r, peer.communityId), search: { mode } });
  }
  return { entries };
}

/** Asks one peer; never throws: a slow, failing or nonsensical peer is an outcome, not an error. */
export async function askPeer(peer: PeerConfig, q: PeerQuery): Promise<PeerOutcome> {
  const started = performance.now();
  const done = (status: PeerStatus, entries: Record<string, unknown>[], detail?: string): PeerOutcome => ({ peer, status, entries, detail, ms: Math.round(performance.now() - started) });
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), q.timeoutMs);
  });
  try {
    const Client = await loadClient();
    const client = new Client({ baseUrl: peer.fhirBase, customHeaders: { authorization: `Bearer ${q.token}`, accept: 'application/fhir+json' } });
    const call = client.search({ resourceType: q.type, searchParams: searchParamsOf(q.params), options: { signal: controller.signal } });
    call.catch(() => undefined);
    const answer = await Promise.race([call, timeout]);
    if (answer === 'timeout') {
      controller.abort();
      return done('timeout', [], `no answer within ${q.timeoutMs} ms`);
    }
    const accepted = acceptAnswer(peer, q, answer);
    return 'invalid' in accepted ? done('invalid', [], accepted.invalid) : done('ok', accepted.entries);
  } catch (e) {
    const status = (e as { response?: { status?: unknown } }).response?.status;
    if (typeof status === 'number') return done('http-error', [], `HTTP ${status}`);
    if (e instanceof SyntaxError) return done('invalid', [], 'the answer is not JSON');
    return done('unreachable', [], 'the peer could not be reached');
  } finally {
    clearTimeout(timer);
  }
}
