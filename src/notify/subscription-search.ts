import type { CapabilityStatementRestResourceSearchParam } from 'fhir/r4';
import { badRequest } from '../fhir/errors';
import type { IssueDetail } from '../fhir/errors';
import { bundleText, entryText } from '../registry/search';
import type { SearchParamDef } from '../registry/search-params';
import { formatParam, idParam, ignoredParamWarning, invalidParam, pageSizeParam, summaryCountParam, tokenScalar } from '../registry/search-params';
import type { Queryable } from '../store/database';
import { SqlBuilder } from '../store/sql-builder';
import { SUBSCRIPTION_COLUMNS, subscriptionText } from './subscription-store';
import type { SubscriptionRow } from './subscription-store';

/** The most Subscriptions one search answers (an organisation has a handful; there is no paging). */
export const MAX_SUBSCRIPTIONS_PER_SEARCH = 100;

const STATUS_SYSTEM = 'http://hl7.org/fhir/subscription-status';

/** `url`: the rest-hook endpoint, matched exactly (R4 uri search: no normalisation). */
function endpointUrl(values: string[], _m: string | undefined, b: SqlBuilder, alias: string): string {
  for (const v of values) if (v.length > 2048 || !/^https?:\/\//i.test(v)) throw invalidParam('url', 'expected the absolute http(s) URL of the endpoint');
  return `${alias}.endpoint = any(${b.param(values)}::text[])`;
}

/** The search parameters of Subscription (R4 base parameters; the CapabilityStatement lists these). */
export const SUBSCRIPTION_SEARCH_PARAMS: readonly SearchParamDef[] = [
  { name: '_id', type: 'token', expression: 'Subscription.id', documentation: 'The logical id', compile: idParam('_id') },
  {
    name: 'status',
    type: 'token',
    expression: 'Subscription.status',
    documentation: 'requested | active | error | off',
    compile: tokenScalar('status', 'status', STATUS_SYSTEM, ['requested', 'active', 'error', 'off']),
  },
  { name: 'url', type: 'uri', expression: 'Subscription.channel.endpoint', documentation: 'The rest-hook endpoint, exactly as given', compile: endpointUrl },
];

export function subscriptionSearchCapability(): CapabilityStatementRestResourceSearchParam[] {
  return SUBSCRIPTION_SEARCH_PARAMS.map((p) => ({ name: p.name, type: p.type, documentation: p.documentation }));
}

interface SubscriptionSearch {
  where: string[];
  b: SqlBuilder;
  kept: [string, string][];
  warnings: IssueDetail[];
  count: number;
  summaryCount: boolean;
}

/**
 * Reads the parameters as the pointer searches do: values OR-ed by comma, parameters AND-ed,
 * unknown ones a 400 under `Prefer: handling=strict` and otherwise ignored with a warning in the
 * Bundle and left out of its self link.
 */
function parseSubscriptionSearch(params: [string, string][], strict: boolean): SubscriptionSearch {
  const out: SubscriptionSearch = { where: [], b: new SqlBuilder(), kept: [], warnings: [], count: MAX_SUBSCRIPTIONS_PER_SEARCH, summaryCount: false };
  if (params.length > 50) throw badRequest('too many search parameters (at most 50)');
  for (const [key, value] of params) {
    if (value.length > 2048) throw badRequest(`search parameter ${key} is too long`, key);
    if (key === '_count') {
      const { count, countOnly } = pageSizeParam(value, MAX_SUBSCRIPTIONS_PER_SEARCH);
      if (countOnly) out.summaryCount = true;
      out.count = count;
      out.kept.push([key, value]);
      continue;
    }
    if (key === '_summary') {
      if (summaryCountParam(value)) out.summaryCount = true;
      out.kept.push([key, value]);
      continue;
    }
    if (key === '_format') {
      formatParam(value);
      continue;
    }
    const param = SUBSCRIPTION_SEARCH_PARAMS.find((p) => p.name === key);
    if (!param) {
      if (strict) throw badRequest(`unknown or unsupported search parameter ${key} for Subscription`, key);
      out.warnings.push(ignoredParamWarning(key));
      continue;
    }
    const values = value.split(',').map((v) => v.trim());
    if (values.some((v) => v === '')) throw badRequest(`search parameter ${key} has an empty value`, key);
    out.where.push(param.compile(values, undefined, out.b, 'subscription'));
    out.kept.push([key, value]);
  }
  return out;
}

/**
 * The caller's organisation's Subscriptions that match, oldest first, as a searchset Bundle whose
 * `total` counts every match (more than `_count` only when the page was cut short).
 */
export async function searchSubscriptions(q: Queryable, o: { owner: string; params: [string, string][]; strict: boolean; fhirBase: string }): Promise<{ bundle: string; rows: SubscriptionRow[] }> {
  const s = parseSubscriptionSearch(o.params, o.strict);
  const where = [`subscription.owner_ods = ${s.b.param(o.owner)}`, ...s.where].join(' and ');
  const counted = await q.query<{ n: number | string }>(`select count(*) as n from subscription where ${where}`, s.b.params);
  const total = Number(counted.rows[0]?.n ?? 0);
  const query = new URLSearchParams(s.kept).toString();
  const self = `${o.fhirBase}/Subscription${query ? `?${query}` : ''}`;
  if (s.summaryCount) return { bundle: bundleText(self, [], s.warnings, total), rows: [] };
  const r = await q.query<SubscriptionRow>(`select ${SUBSCRIPTION_COLUMNS} from subscription where ${where} order by created, id limit ${s.count}`, s.b.params);
  const entries = r.rows.map((row) => entryText(`${o.fhirBase}/Subscription/${row.id}`, subscriptionText(row), 'match'));
  return { bundle: bundleText(self, entries, s.warnings, total), rows: r.rows };
}
