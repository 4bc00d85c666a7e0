import { z } from 'zod';

/** FHIR R4 primitive and general-purpose datatypes, as zod schemas (R4 §2.24 Datatypes). */

// R4 dateTime / date / instant regular expressions (from the FHIR specification's datatypes page).
const DATE_TIME =
  /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$/;
const INSTANT =
  /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/;
export const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

export const str = (max = 1024): z.ZodString => z.string().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);
export const dateTimeSchema = z.string().regex(DATE_TIME, 'must be a FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD or a full date-time with a time zone)');
export const instantSchema = z.string().regex(INSTANT, 'must be a FHIR instant (date-time with seconds and a time zone)');
export const uriSchema = str(2048).regex(/^\S+$/, 'must be a URI without spaces');
export const urlSchema = str(2048).refine((v) => URL.canParse(v), 'must be an absolute URL');

export const codingSchema = z
  .object({ system: uriSchema.optional(), version: str().optional(), code: str(256).optional(), display: str().optional(), userSelected: z.boolean().optional() })
  .strict();
export type Coding = z.infer<typeof codingSchema>;

export const codeableConceptSchema = z.object({ coding: z.array(codingSchema).max(50).optional(), text: str().optional() }).strict();
export type CodeableConcept = z.infer<typeof codeableConceptSchema>;

export const periodSchema = z.object({ start: dateTimeSchema.optional(), end: dateTimeSchema.optional() }).strict();

const identifierBase = z.object({
  use: z.enum(['usual', 'official', 'temp', 'secondary', 'old']).optional(),
  type: codeableConceptSchema.optional(),
  system: uriSchema.optional(),
  value: str(256).optional(),
  period: periodSchema.optional(),
});
export const simpleReferenceSchema = z
  .object({ reference: str(512).optional(), type: uriSchema.optional(), identifier: identifierBase.strict().optional(), display: str().optional() })
  .strict();
export const identifierSchema = identifierBase.extend({ assigner: simpleReferenceSchema.optional() }).strict();
export type Identifier = z.infer<typeof identifierSchema>;
export const referenceSchema = simpleReferenceSchema;
export type Reference = z.infer<typeof referenceSchema>;

export const extensionSchema: z.ZodType<unknown> = z.lazy(() =>
  z.object({ url: uriSchema }).catchall(z.unknown()).refine((e) => Object.keys(e).length >= 2, 'an extension needs a value or nested extensions'),
);

export const metaSchema = z
  .object({
    versionId: z.string().optional(),
    lastUpdated: z.string().optional(),
    source: uriSchema.optional(),
    profile: z.array(uriSchema).max(10).optional(),
    security: z.array(codingSchema).max(20).optional(),
    tag: z.array(codingSchema).max(20).optional(),
  })
  .strict();

export const narrativeSchema = z.object({ status: z.enum(['generated', 'extensions', 'additional', 'empty']), div: str(100_000) }).strict();

/** Common to every resource Locus stores (R4 Resource and DomainResource). */
export const domainResourceShape = {
  id: z.string().regex(FHIR_ID, 'must be a FHIR id').optional(),
  meta: metaSchema.optional(),
  implicitRules: uriSchema.optional(),
  language: str(32).optional(),
  text: narrativeSchema.optional(),
  extension: z.array(extensionSchema).max(50).optional(),
  modifierExtension: z.array(extensionSchema).max(0, 'modifier extensions are not understood by this registry').optional(),
};

export interface DateRange {
  /** inclusive */
  lo: Date;
  /** exclusive */
  hi: Date;
}

/**
 * The range of instants a FHIR date/dateTime denotes (R4 §2.21.0.9 "date" search: a value is an
 * implicit range at its precision). Values without a time zone are read as UTC.
 */
export function dateRange(value: string): DateRange | undefined {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  if (mo === undefined) return { lo: utc(year, 0, 1), hi: utc(year + 1, 0, 1) };
  const month = Number(mo) - 1;
  if (month < 0 || month > 11) return undefined;
  if (d === undefined) return { lo: utc(year, month, 1), hi: utc(year, month + 1, 1) };
  const day = Number(d);
  if (day < 1 || day > 31) return undefined;
  if (h === undefined) return { lo: utc(year, month, day), hi: utc(year, month, day + 1) };
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${frac ?? ''}${tz ?? 'Z'}`;
  const lo = new Date(iso);
  if (Number.isNaN(lo.getTime())) return undefined;
  const step = s === undefined ? 60_000 : frac ? 1 : 1000;
  return { lo, hi: new Date(lo.getTime() + step) };
}

function utc(year: number, month: number, day: number): Date {
  return new Date(Date.UTC(year, month, day));
}

/** `system|value` token text used in the array columns; also the bare value for system-less search. */
export function tokens(system: string | undefined, value: string | undefined): string[] {
  if (!value) return [];
  return system ? [`${system}|${value}`, value] : [`|${value}`, value];
}

export function codingTokens(codings: readonly Coding[] | undefined): string[] {
  return (codings ?? []).flatMap((c) => tokens(c.system, c.code));
}
