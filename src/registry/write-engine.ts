import { randomUUID } from 'node:crypto';
import type { Principal } from '../access/principal';
import { hasScope } from '../access/principal';
import type { IssueDetail, SpineCode } from '../fhir/errors';
import { FhirError, forbidden, notFound } from '../fhir/errors';
import type { Queryable } from '../store/database';
import { pgErrorCode, constraintName, PG_UNIQUE_VIOLATION } from '../store/database';
import type { ResourceRow, VersionRow } from '../store/resource-rows';
import { deleteRows, insertRows, insertVersions, updateRows } from '../store/resource-rows';
import { contentOf } from './canonical-json';
import { buildColumns, checkImmutable, loadLookups } from './write-rules';
import type { Lookups, ExistingRow } from './write-rules';
import type { ResourceTypeDef } from './resource-types';
import { parseOrThrow } from './validation';
import type { Condition } from './conditional';
import { findConditionalMatches, parseCondition } from './conditional';
import { recordPointerChanges } from '../notify/outbox';

/** One write asked for: a REST interaction or one entry of a batch/transaction Bundle. */
export interface WriteRequest {
  method: 'POST' | 'PUT' | 'DELETE';
  def: ResourceTypeDef;
  id?: string;
  /** Query of a conditional create (If-None-Exist) or conditional update (PUT Type?query). */
  conditional?: string;
  ifMatch?: string;
  resource?: unknown;
  fullUrl?: string;
  /** Prefix for error expressions: 'ImagingStudy' or 'Bundle.entry[3].resource'. */
  at: string;
}

export type WriteCode = 'RESOURCE_CREATED' | 'RESOURCE_UPDATED' | 'RESOURCE_UNCHANGED' | 'RESOURCE_DELETED' | 'RESOURCE_EXISTS';

export interface WriteOutcome {
  status: 200 | 201;
  code: WriteCode;
  type: string;
  id: string;
  version: number;
  lastUpdated: string;
  /** The stored resource text (absent for deletes). */
  text?: string;
  patient?: string;
  custodian?: string;
  /** Ids of DocumentReferences this write superseded. */
  superseded: string[];
}

interface Planned {
  req: WriteRequest;
  index: number;
  id: string;
  kind: 'create' | 'update' | 'delete' | 'noop' | 'exists';
  existing?: ExistingRow;
  resource?: Record<string, unknown>;
}

const ETAG = /^W\/"(\d+)"$/;

function scopeLetter(kind: Planned['kind']): 'c' | 'u' | 'd' {
  return kind === 'create' ? 'c' : kind === 'delete' ? 'd' : 'u';
}

function at(req: WriteRequest, error: unknown): unknown {
  if (!(error instanceof FhirError) || req.at === req.def.type) return error;
  const issues: IssueDetail[] = error.issues.map((i) => ({
    ...i,
    diagnostics: i.diagnostics.startsWith(req.def.type) ? `${req.at}${i.diagnostics.slice(req.def.type.length)}` : `${req.at}: ${i.diagnostics}`,
    expression: (i.expression ?? [req.def.type]).map((e) => (e.startsWith(req.def.type) ? `${req.at}${e.slice(req.def.type.length)}` : e)),
  }));
  return FhirError.many(error.status, issues);
}

/**
 * Writes a set of resources atomically: all changes, their version rows and (through `audit`)
 * the AuditEvent commit together or not at all. Lookups and writes are set-based, so a Bundle of
 * 500 entries costs a handful of statements, not 500 round trips.
 */
export async function writeResources(
  tx: Queryable,
  principal: Principal,
  requests: readonly WriteRequest[],
  now: Date = new Date(),
): Promise<WriteOutcome[]> {
  const planned = await resolveTargets(tx, principal, requests);
  resolveUrnReferences(planned);
  for (const p of planned) {
    if (p.kind === 'delete' || p.kind === 'exists') continue;
    try {
      p.resource = parseOrThrow(p.req.def.schema, p.req.resource, p.req.def.type) as Record<string, unknown>;
      if (p.req.method === 'PUT' && p.req.id && p.resource.id !== undefined && p.resource.id !== p.req.id) {
        throw new FhirError(400, 'invalid', `${p.req.def.type}.id: the resource id ${String(p.resource.id)} does not match the URL id ${p.req.id}`, 'INVALID_RESOURCE', `${p.req.def.type}.id`);
      }
    } catch (e) {
      throw at(p.req, e);
    }
  }
  const lookups = await loadLookups(tx, planned.filter((p) => p.resource).map((p) => ({ def: p.req.def, resource: p.resource as Record<string, unknown> })));
  const lastUpdated = now.toISOString();
  const rowsByTable = new Map<ResourceTypeDef, { inserts: ResourceRow[]; updates: ResourceRow[]; deletes: string[] }>();
  const versions: VersionRow[] = [];
  const outcomes: WriteOutcome[] = [];
  const supersedes: { from: Planned; targetIds: string[] }[] = [];

  for (const p of planned) {
    try {
      outcomes.push(planOne(p, principal, lookups, lastUpdated, rowsByTable, versions, supersedes));
    } catch (e) {
      throw at(p.req, e);
    }
  }
  await applySupersedes(tx, principal, supersedes, outcomes, lastUpdated, rowsByTable, versions);
  try {
    for (const [def, rows] of rowsByTable) {
      await deleteRows(tx, def.table, rows.deletes);
      await insertRows(tx, def.table, def.columns, rows.inserts);
      const updated = await updateRows(tx, def.table, def.columns, rows.updates);
      const lost = rows.updates.find((r) => !updated.has(r.id));
      if (lost) throw new FhirError(409, 'conflict', `${def.type}/${lost.id} was changed by another request; read it again and retry`, 'CONFLICT');
    }
    await insertVersions(tx, versions);
    // Notifications (src/notify): the outbox rows commit with the changes they announce.
    await recordPointerChanges(tx, versions, new Set(outcomes.flatMap((o) => o.superseded.map((id) => `DocumentReference/${id}`))));
  } catch (e) {
    throw mapUniqueViolation(e);
  }
  return outcomes;
}

function mapUniqueViolation(e: unknown): unknown {
  if (pgErrorCode(e) !== PG_UNIQUE_VIOLATION) return e;
  const c = constraintName(e) ?? '';
  const what = c.includes('imaging_study')
    ? 'this custodian already has a pointer for this Study Instance UID'
    : c.includes('document_reference')
      ? 'this custodian already has a current pointer with this masterIdentifier'
      : c.includes('organization')
        ? 'an Organization with this ODS code is already registered'
        : 'a resource with the same identity already exists';
  return new FhirError(409, 'duplicate', `duplicate rejected: ${what}`, 'DUPLICATE_REJECTED');
}

async function resolveTargets(tx: Queryable, principal: Principal, requests: readonly WriteRequest[]): Promise<Planned[]> {
  const out: Planned[] = [];
  const byId = new Map<ResourceTypeDef, string[]>();
  requests.forEach((req) => {
    if (req.id && !req.conditional) byId.set(req.def, [...(byId.get(req.def) ?? []), req.id]);
  });
  const existing = new Map<string, ExistingRow>();
  for (const [def, ids] of byId) {
    const rows = await tx.query<ExistingRow>(
      `select id, version, resource, ${def.pointer ? 'patient_nhs, custodian_ods' : 'null as patient_nhs, null as custodian_ods'} from ${def.table} where id = any($1::text[]) for update`,
      [ids],
    );
    for (const r of rows.rows) existing.set(`${def.type}/${r.id}`, r);
  }
  const conditionalMatches = await resolveConditions(tx, principal, requests);
  for (const [index, req] of requests.entries()) {
    try {
      out.push(resolveTarget(req, index, existing, conditionalMatches.get(index)));
    } catch (e) {
      throw at(req, e);
    }
  }
  return out;
}

/** Every conditional entry of the request set, answered with one statement per resource type. */
async function resolveConditions(tx: Queryable, principal: Principal, requests: readonly WriteRequest[]): Promise<Map<number, ExistingRow[]>> {
  const byType = new Map<ResourceTypeDef, { index: number; condition: Condition }[]>();
  for (const [index, req] of requests.entries()) {
    if (req.conditional === undefined) continue;
    let condition: Condition;
    try {
      condition = parseCondition(req.def, req.conditional);
    } catch (e) {
      throw at(req, e);
    }
    byType.set(req.def, [...(byType.get(req.def) ?? []), { index, condition }]);
  }
  const out = new Map<number, ExistingRow[]>();
  for (const [def, items] of byType) {
    const found = await findConditionalMatches(tx, def, principal, items.map((i) => i.condition));
    items.forEach((item, k) => out.set(item.index, found[k] ?? []));
  }
  return out;
}

function resolveTarget(req: WriteRequest, index: number, existing: Map<string, ExistingRow>, conditionalMatches: ExistingRow[] | undefined): Planned {
  const { def } = req;
  if (req.conditional !== undefined) {
    const matches = conditionalMatches ?? [];
    if (matches.length > 1) {
      throw new FhirError(412, 'multiple-matches', `the condition ${req.conditional} matches ${matches.length} ${def.type} resources`, 'PRECONDITION_FAILED');
    }
    const match = matches[0];
    if (req.method === 'POST') {
      return match ? { req, index, id: match.id, kind: 'exists', existing: match } : { req, index, id: randomUUID(), kind: 'create' };
    }
    return match ? { req, index, id: match.id, kind: 'update', existing: match } : { req, index, id: randomUUID(), kind: 'create' };
  }
  if (req.method === 'POST') return { req, index, id: randomUUID(), kind: 'create' };
  const id = req.id as string;
  const row = existing.get(`${def.type}/${id}`);
  if (!row) throw notFound(`${def.type}/${id} is not known to this registry`);
  return { req, index, id, kind: req.method === 'DELETE' ? 'delete' : 'update', existing: row };
}

/**
 * Transaction Bundles (R4 §3.1.0.11.2): `urn:uuid:` fullUrls of created entries become `Type/id`.
 * The request's parsed resources are rewritten in place (they belong to this request alone).
 */
function resolveUrnReferences(planned: Planned[]): void {
  const map = new Map<string, string>();
  for (const p of planned) if (p.req.fullUrl?.startsWith('urn:uuid:')) map.set(p.req.fullUrl, `${p.req.def.type}/${p.id}`);
  if (map.size === 0) return;
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
    } else if (node && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      for (const k in o) {
        const v = o[k];
        if (k === 'reference' && typeof v === 'string') {
          const to = map.get(v);
          if (to !== undefined) o[k] = to;
        } else if (v !== null && typeof v === 'object') walk(v);
      }
    }
  };
  for (const p of planned) if (p.req.resource) walk(p.req.resource);
}

function checkEtag(p: Planned): void {
  if (!p.req.ifMatch || !p.existing) return;
  const m = ETAG.exec(p.req.ifMatch.trim()) ?? /^"?(\d+)"?$/.exec(p.req.ifMatch.trim());
  if (!m || Number(m[1]) !== p.existing.version) {
    throw new FhirError(412, 'conflict', `If-Match ${p.req.ifMatch} does not match the current version W/"${p.existing.version}"`, 'PRECONDITION_FAILED');
  }
}

function checkWriteAccess(p: Planned, principal: Principal, custodian: string | undefined): void {
  const { def } = p.req;
  if (!hasScope(principal, def.type, scopeLetter(p.kind))) {
    throw forbidden(`the token's scopes do not allow ${p.kind} of ${def.type}`, 'ACCESS_DENIED_LEVEL');
  }
  if (def.pointer) {
    // A publisher writes only its own organisation's pointers (NRL gap: proven by the token, not a header).
    for (const c of [custodian, p.existing?.custodian_ods]) {
      if (c && c !== principal.organization) {
        throw forbidden(`organisation ${principal.organization} may not write pointers held by ${c}`, 'AUTHOR_CREDENTIALS_ERROR');
      }
    }
  } else if (def.type === 'Consent') {
    // Consents are recorded by any organisation granted a Consent scope (the patient's trust).
  } else if (principal.role !== 'admin' && principal.role !== 'system') {
    throw forbidden(`${def.type} is written by network administrators only`, 'ACCESS_DENIED_LEVEL');
  }
}

function planOne(
  p: Planned,
  principal: Principal,
  lookups: Lookups,
  lastUpdated: string,
  rowsByTable: Map<ResourceTypeDef, { inserts: ResourceRow[]; updates: ResourceRow[]; deletes: string[] }>,
  versions: VersionRow[],
  supersedes: { from: Planned; targetIds: string[] }[],
): WriteOutcome {
  const { def } = p.req;
  const rows = rowsByTable.get(def) ?? { inserts: [], updates: [], deletes: [] };
  rowsByTable.set(def, rows);
  if (p.kind === 'exists') {
    checkWriteAccess({ ...p, kind: 'create' }, principal, p.existing?.custodian_ods ?? undefined);
    const e = p.existing as ExistingRow;
    return { status: 200, code: 'RESOURCE_EXISTS', type: def.type, id: e.id, version: e.version, lastUpdated: lastUpdatedOf(e.resource), text: e.resource, patient: e.patient_nhs ?? undefined, custodian: e.custodian_ods ?? undefined, superseded: [] };
  }
  if (p.kind === 'delete') {
    const e = p.existing as ExistingRow;
    checkWriteAccess(p, principal, e.custodian_ods ?? undefined);
    checkEtag(p);
    rows.deletes.push(p.id);
    const meta = JSON.parse(e.resource) as { category?: unknown; meta?: { security?: { system?: string; code?: string }[] } };
    versions.push({ resource_type: def.type, id: p.id, version: e.version + 1, last_updated: lastUpdated, deleted: true, patient_nhs: e.patient_nhs, custodian_ods: e.custodian_ods, categories: [], security: (meta.meta?.security ?? []).map((s) => `${s.system}|${s.code}`), resource: null });
    return { status: 200, code: 'RESOURCE_DELETED', type: def.type, id: p.id, version: e.version + 1, lastUpdated, patient: e.patient_nhs ?? undefined, custodian: e.custodian_ods ?? undefined, superseded: [] };
  }
  const resource = p.resource as Record<string, unknown>;
  const columns = buildColumns(def, resource, lookups, new Date(lastUpdated));
  const custodian = typeof columns.custodian_ods === 'string' ? columns.custodian_ods : undefined;
  checkWriteAccess(p, principal, custodian);
  if (p.kind === 'update') {
    checkEtag(p);
    checkImmutable(def, p.existing as ExistingRow, resource, columns);
  }
  const version = p.kind === 'create' ? 1 : (p.existing as ExistingRow).version + 1;
  const { id: _ignored, meta, resourceType, ...rest } = resource;
  const clientMeta = { ...(meta as Record<string, unknown> | undefined) };
  delete clientMeta.versionId;
  delete clientMeta.lastUpdated;
  const stored = { resourceType, id: p.id, meta: { ...clientMeta, versionId: String(version), lastUpdated }, ...rest };
  if (p.kind === 'update' && contentOf(stored) === contentOf(JSON.parse((p.existing as ExistingRow).resource) as Record<string, unknown>)) {
    const e = p.existing as ExistingRow;
    return { status: 200, code: 'RESOURCE_UNCHANGED', type: def.type, id: p.id, version: e.version, lastUpdated: lastUpdatedOf(e.resource), text: e.resource, patient: e.patient_nhs ?? undefined, custodian: e.custodian_ods ?? undefined, superseded: [] };
  }
  const text = JSON.stringify(stored);
  const row: ResourceRow = { id: p.id, version, last_updated: lastUpdated, resource: text, ...columns };
  (p.kind === 'create' ? rows.inserts : rows.updates).push(row);
  versions.push({
    resource_type: def.type,
    id: p.id,
    version,
    last_updated: lastUpdated,
    deleted: false,
    patient_nhs: (columns.patient_nhs as string | undefined) ?? null,
    custodian_ods: custodian ?? null,
    categories: (columns.categories as string[] | undefined) ?? [],
    security: (columns.security as string[] | undefined) ?? [],
    resource: text,
  });
  const targets = lookups.supersedeTargets(resource);
  if (p.kind === 'create' && targets.length > 0) supersedes.push({ from: p, targetIds: targets });
  return {
    status: p.kind === 'create' ? 201 : 200,
    code: p.kind === 'create' ? 'RESOURCE_CREATED' : 'RESOURCE_UPDATED',
    type: def.type,
    id: p.id,
    version,
    lastUpdated,
    text,
    patient: columns.patient_nhs as string | undefined,
    custodian,
    superseded: [],
  };
}

function lastUpdatedOf(text: string): string {
  return (JSON.parse(text) as { meta?: { lastUpdated?: string } }).meta?.lastUpdated ?? new Date(0).toISOString();
}

/**
 * NRL supersede, made atomic: the replaced DocumentReference must be current and share custodian,
 * patient and type with its replacement; it becomes `superseded` in the same transaction.
 */
async function applySupersedes(
  tx: Queryable,
  principal: Principal,
  supersedes: { from: Planned; targetIds: string[] }[],
  outcomes: WriteOutcome[],
  lastUpdated: string,
  rowsByTable: Map<ResourceTypeDef, { inserts: ResourceRow[]; updates: ResourceRow[]; deletes: string[] }>,
  versions: VersionRow[],
): Promise<void> {
  if (supersedes.length === 0) return;
  const ids = supersedes.flatMap((s) => s.targetIds);
  const found = await tx.query<{ id: string; version: number; resource: string; patient_nhs: string; custodian_ods: string; status: string; types: string[]; categories: string[]; security: string[] }>(
    `select id, version, resource, patient_nhs, custodian_ods, status, types, categories, security, master_identifier, identifiers,
            settings, date, period_start, period_end, related, modalities
       from document_reference where id = any($1::text[]) for update`,
    [ids],
  );
  const byId = new Map(found.rows.map((r) => [r.id, r]));
  for (const s of supersedes) {
    const def = s.from.req.def;
    const rows = rowsByTable.get(def) as { inserts: ResourceRow[]; updates: ResourceRow[]; deletes: string[] };
    const newRow = rows.inserts.find((r) => r.id === s.from.id) as ResourceRow;
    for (const targetId of s.targetIds) {
      const fail = (message: string, spine: SpineCode = 'INVALID_RESOURCE'): never => {
        throw at(s.from.req, new FhirError(422, 'processing', `DocumentReference.relatesTo: ${message}`, spine, 'DocumentReference.relatesTo'));
      };
      const t = byId.get(targetId) ?? fail(`the replaced pointer DocumentReference/${targetId} does not exist`, 'NO_RECORD_FOUND');
      if (t.custodian_ods !== principal.organization || t.custodian_ods !== newRow.custodian_ods) fail('the replaced pointer belongs to another custodian', 'AUTHOR_CREDENTIALS_ERROR');
      if (t.patient_nhs !== newRow.patient_nhs) fail('the replaced pointer is for another patient');
      const sameType = (t.types as string[]).some((x) => x.includes('|') && (newRow.types as string[]).includes(x));
      if (!sameType) fail('the replaced pointer has another type');
      if (t.status !== 'current') fail(`the replaced pointer is already ${t.status}`);
      const resource = JSON.parse(t.resource) as Record<string, unknown> & { meta?: Record<string, unknown> };
      const version = t.version + 1;
      const text = JSON.stringify({ ...resource, meta: { ...resource.meta, versionId: String(version), lastUpdated }, status: 'superseded' });
      rows.updates.push({ ...t, id: t.id, version, last_updated: lastUpdated, status: 'superseded', resource: text });
      versions.push({ resource_type: 'DocumentReference', id: t.id, version, last_updated: lastUpdated, deleted: false, patient_nhs: t.patient_nhs, custodian_ods: t.custodian_ods, categories: t.categories, security: t.security, resource: text });
      byId.set(t.id, { ...t, status: 'superseded' });
      const outcome = outcomes.find((o) => o.type === 'DocumentReference' && o.id === s.from.id);
      outcome?.superseded.push(t.id);
    }
  }
}
