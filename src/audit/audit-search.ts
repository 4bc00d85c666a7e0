import type { AuditIndexColumns } from './audit-event';
import { renderAuditEvent } from './audit-event';
import { bundleText, entryText } from '../registry/search';
import type { Queryable } from '../store/database';
import { SqlBuilder } from '../store/sql-builder';
import type { AuditCursor, AuditQuery } from './audit-query';
import { encodeAuditCursor } from './audit-query';

/** One `audit_event` row as the review reads it (the typed columns, and the stored event text). */
export interface AuditRow extends AuditIndexColumns {
  seq: number;
  id: string;
  recorded: Date;
  resource?: string;
}

const COLUMNS = 't.seq, t.id, t.recorded, t.patients, t.agent_ods, t.agent_user, t.action, t.subtype, t.outcome, t.purpose, t.break_glass';

export interface AuditPage {
  rows: AuditRow[];
  next?: AuditCursor;
  previous?: AuditCursor;
}

function copyBuilder(b: SqlBuilder): SqlBuilder {
  const c = new SqlBuilder();
  c.params.push(...b.params);
  return c;
}

/**
 * One page of events, keyset-paged on (recorded, seq) so that page N costs what page 1 costs
 * (index audit_event_recorded). Asks for count+1 rows to know whether a next page exists.
 */
export async function findAuditPage(q: Queryable, query: AuditQuery, withResource: boolean): Promise<AuditPage> {
  const b = copyBuilder(query.b);
  const where = [...query.where];
  const backwards = query.cursor?.d === 'p';
  const desc = query.descending !== backwards;
  if (query.cursor) where.push(`(t.recorded, t.seq) ${desc ? '<' : '>'} (${b.param(new Date(query.cursor.k))}::timestamptz, ${b.param(query.cursor.i)}::bigint)`);
  const dir = desc ? 'desc' : 'asc';
  const sql = `select ${COLUMNS}${withResource ? ', t.resource' : ''} from audit_event t${where.length ? ` where ${where.join(' and ')}` : ''} order by t.recorded ${dir}, t.seq ${dir} limit ${query.count + 1}`;
  const r = await q.query<AuditRow>(sql, b.params);
  let rows = r.rows;
  const more = rows.length > query.count;
  if (more) rows = rows.slice(0, query.count);
  if (backwards) rows = rows.reverse();
  const s = query.descending ? '-date' : 'date';
  const first = rows[0];
  const last = rows[rows.length - 1];
  const hasNext = backwards ? Boolean(query.cursor) : more;
  const hasPrev = backwards ? more : Boolean(query.cursor);
  return {
    rows,
    next: hasNext && last ? { k: last.recorded.toISOString(), i: Number(last.seq), d: 'n', s } : undefined,
    previous: hasPrev && first ? { k: first.recorded.toISOString(), i: Number(first.seq), d: 'p', s } : undefined,
  };
}

export async function countAuditEvents(q: Queryable, query: AuditQuery): Promise<number> {
  const r = await q.query<{ n: number }>(`select count(*)::int as n from audit_event t${query.where.length ? ` where ${query.where.join(' and ')}` : ''}`, query.b.params);
  return r.rows[0]?.n ?? 0;
}

function linkQuery(kept: [string, string][], cursor?: AuditCursor): string {
  const qs = new URLSearchParams(cursor ? [...kept, ['_cursor', encodeAuditCursor(cursor)]] : kept).toString();
  return qs ? `?${qs}` : '';
}

/** The searchset Bundle of rendered AuditEvents (audit-event.ts: the trail stores the facts). */
export function auditBundle(fhirBase: string, query: AuditQuery, page: AuditPage): string {
  const base = `${fhirBase}/AuditEvent`;
  const links: [string, string][] = [['self', `${base}${linkQuery(query.kept, query.cursor)}`]];
  if (page.next) links.push(['next', `${base}${linkQuery(query.kept, page.next)}`]);
  if (page.previous) links.push(['previous', `${base}${linkQuery(query.kept, page.previous)}`]);
  const entries = page.rows.map((row) => entryText(`${base}/${row.id}`, renderAuditEvent(row.resource as string), 'match'));
  return bundleText(links, entries, []);
}

/** Query string (without cursor) that reproduces this filter, for export links. */
export function filterQueryString(query: AuditQuery, extra: [string, string][] = []): string {
  return new URLSearchParams([...query.kept.filter(([k]) => k !== '_format' && k !== '_count'), ...extra]).toString();
}

/**
 * Every matching event in the query's order, in keyset batches: memory stays bounded by one
 * batch whatever the size of the trail, no transaction or connection is held between batches,
 * and the caller applies backpressure simply by awaiting before asking for the next batch.
 */
export async function* streamAuditEvents(q: Queryable, query: AuditQuery, batchSize = 1000): AsyncGenerator<AuditRow[]> {
  let cursor: AuditCursor | undefined;
  for (;;) {
    const page = await findAuditPage(q, { ...query, cursor, count: batchSize }, true);
    if (page.rows.length > 0) yield page.rows;
    if (!page.next) return;
    cursor = page.next;
  }
}

export interface DayCount {
  day: string;
  ods: string;
  n: number;
}

/** Accesses per day (UTC) per organisation for the filter, over at most `days` days ending at `until`. */
export async function countPerDay(q: Queryable, query: AuditQuery, until: Date, days: number): Promise<DayCount[]> {
  const b = copyBuilder(query.b);
  const from = new Date(Date.UTC(until.getUTCFullYear(), until.getUTCMonth(), until.getUTCDate() - days + 1));
  const where = [...query.where, `t.recorded >= ${b.param(from)}::timestamptz`, `t.recorded < ${b.param(new Date(from.getTime() + days * 86_400_000))}::timestamptz`];
  const r = await q.query<{ day: string; ods: string; n: number }>(
    `select to_char(t.recorded at time zone 'UTC', 'YYYY-MM-DD') as day, coalesce(t.agent_ods, '?') as ods, count(*)::int as n
       from audit_event t where ${where.join(' and ')} group by 1, 2 order by 1, 2`,
    b.params,
  );
  return r.rows;
}

/** One AuditEvent by id, rendered, with the patients it names. */
export async function readAuditEvent(q: Queryable, id: string): Promise<{ resource: string; patients: string[] } | undefined> {
  const r = await q.query<{ resource: string; patients: string[] }>('select resource, patients from audit_event where id = $1', [id]);
  const row = r.rows[0];
  return row && { resource: renderAuditEvent(row.resource), patients: row.patients };
}
