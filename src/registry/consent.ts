import { z } from 'zod';
import { CATEGORY_REPORT, CATEGORY_STUDY, ODS_SYSTEM, SNOMED_SYSTEM } from './codes';
import { codeableConceptSchema, codingSchema, dateRange, dateTimeSchema, domainResourceShape, identifierSchema, periodSchema, referenceSchema } from './fhir-datatypes';
import { nhsSubjectSchema } from './nhs-identifier';

/**
 * Patients' sharing restrictions as FHIR R4 Consent (IHE PCF style): scope patient-privacy,
 * the patient by NHS number, and provisions that deny sharing beyond the custodian — to
 * everyone, to named organisations (provision.actor), or for a category (provision.code: reports
 * but not images), each optionally time-bounded (provision.period).
 */
export const CONSENT_PROFILE = 'https://locus.nhs.example/fhir/StructureDefinition/locus-imaging-consent';
export const CONSENT_SCOPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/consentscope';

const provisionBase = {
  type: z.enum(['deny', 'permit']).optional(),
  period: periodSchema.optional(),
  actor: z.array(z.object({ role: codeableConceptSchema, reference: referenceSchema }).strict()).max(50).optional(),
  action: z.array(codeableConceptSchema).max(10).optional(),
  securityLabel: z.array(codingSchema).max(10).optional(),
  purpose: z.array(codingSchema).max(10).optional(),
  class: z.array(codingSchema).max(10).optional(),
  code: z.array(codeableConceptSchema).max(10).optional(),
};
type Provision = z.infer<z.ZodObject<typeof provisionBase>> & { provision?: Provision[] };
const provisionSchema: z.ZodType<Provision> = z.lazy(() => z.object({ ...provisionBase, provision: z.array(provisionSchema).max(20).optional() }).strict()) as z.ZodType<Provision>;

export const consentSchema = z
  .object({
    resourceType: z.literal('Consent'),
    ...domainResourceShape,
    identifier: z.array(identifierSchema).max(10).optional(),
    status: z.enum(['draft', 'proposed', 'active', 'rejected', 'inactive', 'entered-in-error']),
    scope: codeableConceptSchema.refine((s) => (s.coding ?? []).some((c) => c.system === CONSENT_SCOPE_SYSTEM && c.code === 'patient-privacy'), `scope must be ${CONSENT_SCOPE_SYSTEM}|patient-privacy`),
    category: z.array(codeableConceptSchema).min(1).max(10),
    patient: nhsSubjectSchema,
    dateTime: dateTimeSchema.optional(),
    performer: z.array(referenceSchema).max(10).optional(),
    organization: z.array(referenceSchema).max(10).optional(),
    policy: z.array(z.object({}).loose()).max(10).optional(),
    policyRule: codeableConceptSchema.optional(),
    provision: provisionSchema,
  })
  .strict();
export type ConsentResource = z.infer<typeof consentSchema>;

export interface DenyRule {
  /** ODS codes denied; empty means every organisation but the custodian. */
  orgs: string[];
  /** SNOMED category codes denied (103693007 study, 721981007 report); empty means all. */
  categories: string[];
  start: string | null;
  end: string | null;
}

const KNOWN_CATEGORIES = new Set([CATEGORY_STUDY, CATEGORY_REPORT]);

function orgsOf(p: Provision): string[] {
  return (p.actor ?? []).map((a) => a.reference.identifier).filter((i) => i?.system === ODS_SYSTEM && i.value).map((i) => (i?.value as string).toUpperCase());
}

function categoriesOf(p: Provision): string[] {
  return (p.code ?? []).flatMap((c) => c.coding ?? []).filter((c) => c.system === SNOMED_SYSTEM && KNOWN_CATEGORIES.has(c.code ?? '')).map((c) => c.code as string);
}

/** Flattens the provision tree into deny rules; a nested rule narrows its parent's period. */
export function denyRules(consent: ConsentResource): DenyRule[] {
  const out: DenyRule[] = [];
  const walk = (p: Provision, inherited: { start: string | null; end: string | null }): void => {
    const start = p.period?.start ? (dateRange(p.period.start)?.lo.toISOString() ?? null) : inherited.start;
    const end = p.period?.end ? (dateRange(p.period.end)?.hi.toISOString() ?? null) : inherited.end;
    if (p.type === 'deny') out.push({ orgs: orgsOf(p), categories: categoriesOf(p), start, end });
    for (const child of p.provision ?? []) walk(child, { start, end });
  };
  walk(consent.provision, { start: null, end: null });
  return out;
}

export interface ConsentColumns {
  patient_nhs: string;
  custodian_ods: string | null;
  status: string;
  rules: DenyRule[];
}

export function consentColumns(c: ConsentResource): ConsentColumns {
  const org = (c.organization ?? []).map((o) => o.identifier).find((i) => i?.system === ODS_SYSTEM)?.value ?? null;
  return { patient_nhs: c.patient.identifier.value, custodian_ods: org, status: c.status, rules: denyRules(c) };
}
