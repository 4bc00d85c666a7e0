import type { Principal } from '../access/principal';
import type { IssueDetail } from '../fhir/errors';
import { badRequest, forbidden, issue } from '../fhir/errors';
import type { AppDeps } from '../fhir/pipeline';
import type { ResourceTypeDef } from '../registry/resource-types';
import type { Queryable } from '../store/database';
import { askPeer, markCommunity } from './fan-out';
import type { PeerOutcome } from './fan-out';
import type { FederationConfig, PeerConfig } from './federation-config';
import type { PeerTokens } from './peer-token';

/** MHD Target Communities: `targetCommunityIdList=urn:oid:a,urn:oid:b` or `=all`. */
export const TARGET_PARAM = 'targetCommunityIdList';
const PATIENT_PARAMS = new Set(['patient.identifier', 'subject:identifier', 'subject.identifier', 'patient']);
/** Peers see the caller's criteria, never a cursor of ours. */
const LOCAL_ONLY = new Set(['_cursor', '_total', '_summary']);

export interface FederatedSearch {
  /** The parameters of the local search (the target list removed). */
  localParams: [string, string][];
  /** Waits for the peers (each bounded by its timeout) and merges them into the local Bundle. */
  merge(localBundle: string): Promise<string>;
  /** What the AuditEvent records: which peers were asked, and how each answered. */
  auditDetail(): Promise<{ type: string; value: string }[]>;
}

export interface Federation {
  config: FederationConfig;
  plan(args: { db: Queryable; principal: Principal; def: ResourceTypeDef; params: [string, string][]; patients?: string[] }): FederatedSearch | undefined;
}

function chooseTargets(config: FederationConfig, values: string[]): PeerConfig[] {
  if (values.includes('all')) return config.peers;
  const out: PeerConfig[] = [];
  for (const v of values) {
    if (v === config.homeCommunityId) continue; // the local community is always searched
    const peer = config.peers.find((p) => p.communityId === v);
    if (!peer) throw badRequest(`${TARGET_PARAM}: community ${v.slice(0, 80)} is not a peer of this registry`, TARGET_PARAM);
    if (!out.includes(peer)) out.push(peer);
  }
  return out;
}

async function agreementsInForce(db: Queryable, config: FederationConfig, peers: PeerConfig[]): Promise<Map<string, string[]>> {
  const r = await db.query<{ id: string; provider_ods: string; categories: string[] }>(
    `select id, provider_ods, categories from sharing_agreement
      where id = any($1::text[]) and recipient_ods = $2 and period_start <= now() and (period_end is null or period_end > now())`,
    [peers.map((p) => p.agreementId), config.organization],
  );
  return new Map(r.rows.filter((a) => peers.some((p) => p.agreementId === a.id && p.organization === a.provider_ods)).map((a) => [a.id, a.categories]));
}

function warningFor(o: PeerOutcome): IssueDetail {
  const what = `community ${o.peer.communityId} (${o.peer.name})`;
  const why: Record<Exclude<PeerOutcome['status'], 'ok'>, string> = {
    timeout: `did not answer in time (${o.detail})`,
    unreachable: 'could not be reached',
    'http-error': `failed (${o.detail})`,
    invalid: `answered something unusable (${o.detail})`,
    'no-agreement': 'has no sharing agreement in force, so it was not asked',
  };
  return { severity: 'warning', code: o.status === 'timeout' ? 'timeout' : 'incomplete', diagnostics: `${what} ${why[o.status as Exclude<PeerOutcome['status'], 'ok'>]}; its results are missing from this Bundle`, spine: 'SERVICE_UNAVAILABLE' };
}

/**
 * Splices the peers into the local searchset: every entry marked with its community (MHD
 * homeCommunityId), a warning OperationOutcome naming each community that is missing. Local
 * paging links stay as they are (they page the local results; peers answer on the first page).
 */
export function mergeBundles(config: FederationConfig, localBundle: string, outcomes: PeerOutcome[]): string {
  const bundle = JSON.parse(localBundle) as { total?: number; entry?: { resource: Record<string, unknown>; search?: { mode?: string } }[] };
  const entries = bundle.entry ?? [];
  const outcomeEntry = entries.find((e) => e.search?.mode === 'outcome');
  const local = entries.filter((e) => e !== outcomeEntry).map((e) => ({ ...e, resource: markCommunity(e.resource, config.homeCommunityId) }));
  const peers = outcomes.flatMap((o) => o.entries);
  const warnings = outcomes.filter((o) => o.status !== 'ok').map(warningFor);
  const issues = [...((outcomeEntry?.resource.issue as unknown[]) ?? []), ...warnings.map(issue)];
  const merged: Record<string, unknown>[] = [...local, ...peers];
  if (issues.length > 0) merged.push({ resource: { resourceType: 'OperationOutcome', issue: issues }, search: { mode: 'outcome' } });
  const { entry: _e, total, ...rest } = bundle;
  return JSON.stringify({ ...rest, ...(total !== undefined && peers.length === 0 ? { total } : {}), ...(merged.length > 0 ? { entry: merged } : {}) });
}

export function createFederation(config: FederationConfig, tokens: PeerTokens): Federation {
  return {
    config,
    plan({ db, principal, def, params }) {
      const asked = params.filter(([k]) => k === TARGET_PARAM).flatMap(([, v]) => v.split(',').map((s) => s.trim()).filter(Boolean));
      if (!params.some(([k]) => k === TARGET_PARAM)) return undefined;
      // No loops: a peer's query is answered from local data only, whatever it asks for.
      if (principal.role === 'peer') throw forbidden(`a peer registry's search is answered locally and cannot fan out to further communities (${TARGET_PARAM})`);
      if (!def.pointer) throw badRequest(`${TARGET_PARAM} applies to ImagingStudy and DocumentReference searches`, TARGET_PARAM);
      if (!params.some(([k]) => PATIENT_PARAMS.has(k))) throw badRequest(`a federated search is per patient: give patient.identifier with ${TARGET_PARAM}`, 'patient.identifier');
      const targets = chooseTargets(config, asked);
      const localParams = params.filter(([k]) => k !== TARGET_PARAM);
      const peerParams = localParams.filter(([k]) => !LOCAL_ONLY.has(k));
      const patients = peerParams.filter(([k]) => PATIENT_PARAMS.has(k)).flatMap(([k, v]) => v.split(',').map((x) => (k === 'patient' ? x.replace(/^.*Patient\//, '') : x.replace(/^.*\|/, ''))));
      // Started now, so the peers work while the local search runs.
      const outcomes: Promise<PeerOutcome[]> = (async () => {
        if (targets.length === 0) return [];
        const agreements = await agreementsInForce(db, config, targets);
        return Promise.all(
          targets.map(async (peer): Promise<PeerOutcome> => {
            const categories = agreements.get(peer.agreementId);
            if (!categories) return { peer, status: 'no-agreement', entries: [], ms: 0 };
            const token = await tokens.tokenFor(peer);
            return askPeer(peer, { type: def.type, params: peerParams, patients, categories, token, timeoutMs: peer.timeoutMs ?? config.timeoutMs });
          }),
        );
      })();
      outcomes.catch(() => undefined);
      return {
        localParams,
        merge: async (localBundle) => mergeBundles(config, localBundle, await outcomes),
        auditDetail: async () =>
          (await outcomes).map((o) => ({ type: 'federation-peer', value: `${o.peer.communityId} agreement=${o.peer.agreementId} outcome=${o.status} entries=${o.entries.length} ms=${o.ms}` })),
      };
    },
  };
}

const attached = new WeakMap<AppDeps, Federation>();

/** The federation extension binds itself to the app's dependencies when it is mounted. */
export function attachFederation(deps: AppDeps, federation: Federation): void {
  attached.set(deps, federation);
}

export function federationOf(deps: AppDeps): Federation | undefined {
  return attached.get(deps);
}
