import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { CATEGORY_REPORT, CATEGORY_STUDY } from '../registry/codes';
import type { Queryable } from '../store/database';

/**
 * Sharing agreements with organisations outside the network (independent providers, NHS Wales):
 * one row per direction — `provider` shares its pointers with `recipient` — for some or all
 * pointer categories, from a start date, optionally to an end date. Ending an agreement sets its
 * end; rows are never deleted, so what was agreed when stays on record.
 */
const ods = z.string().regex(/^[A-Z0-9]{1,10}$/, 'must be an ODS code (capital letters and digits)');
const CATEGORY_NAMES: Record<string, string> = { study: CATEGORY_STUDY, report: CATEGORY_REPORT };

export const agreementInputSchema = z
  .object({
    provider: ods,
    recipient: ods,
    categories: z.array(z.enum(['study', 'report'])).default([]),
    start: z.coerce.date(),
    end: z.coerce.date().optional(),
    description: z.string().min(3).max(500),
  })
  .refine((a) => a.provider !== a.recipient, 'provider and recipient must differ')
  .refine((a) => !a.end || a.end > a.start, 'the end must come after the start');
export type AgreementInput = z.input<typeof agreementInputSchema>;

export interface AgreementRow {
  id: string;
  provider_ods: string;
  recipient_ods: string;
  categories: string[];
  period_start: Date;
  period_end: Date | null;
  description: string;
}

export async function addAgreement(q: Queryable, input: AgreementInput): Promise<AgreementRow> {
  const a = agreementInputSchema.parse(input);
  const known = await q.query<{ ods: string }>('select ods from organization where ods = any($1::text[])', [[a.provider, a.recipient]]);
  const missing = [a.provider, a.recipient].filter((o) => !known.rows.some((r) => r.ods === o));
  if (missing.length > 0) throw new Error(`not registered organisations: ${missing.join(', ')}`);
  const row = await q.query<AgreementRow>(
    `insert into sharing_agreement (id, provider_ods, recipient_ods, categories, period_start, period_end, description)
     values ($1, $2, $3, $4, $5, $6, $7) returning *`,
    [randomUUID(), a.provider, a.recipient, a.categories.map((c) => CATEGORY_NAMES[c] as string), a.start, a.end ?? null, a.description],
  );
  return row.rows[0] as AgreementRow;
}

export async function listAgreements(q: Queryable): Promise<AgreementRow[]> {
  return (await q.query<AgreementRow>('select * from sharing_agreement order by provider_ods, recipient_ods, period_start')).rows;
}

/** Ends an agreement on `at` (now by default); an agreement already ended earlier keeps its end. */
export async function endAgreement(q: Queryable, id: string, at: Date = new Date()): Promise<boolean> {
  const r = await q.query('update sharing_agreement set period_end = $2 where id = $1 and (period_end is null or period_end > $2)', [id, at]);
  return r.rowCount > 0;
}

export function categoryNames(codes: readonly string[]): string {
  if (codes.length === 0) return 'all';
  return codes.map((c) => Object.entries(CATEGORY_NAMES).find(([, v]) => v === c)?.[0] ?? c).join(',');
}
