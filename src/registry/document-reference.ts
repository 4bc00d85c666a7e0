import { z } from 'zod';
import {
  CATEGORY_REPORT,
  CATEGORY_STUDY,
  DCM_SYSTEM,
  NICIP_SYSTEM,
  SNOMED_SYSTEM,
  V2_0203_SYSTEM,
} from './codes';
import { DICOM_UID_SYSTEM, uidFromUrnOid } from './dicom-uid';
import {
  codeableConceptSchema,
  codingSchema,
  codingTokens,
  dateRange,
  domainResourceShape,
  identifierSchema,
  instantSchema,
  periodSchema,
  referenceSchema,
  str,

  urlSchema,
} from './fhir-datatypes';
import type { Identifier } from './fhir-datatypes';
import { identifierTokens } from './imaging-study';
import { nhsSubjectSchema, odsReferenceSchema } from './nhs-identifier';
import { securityTokens } from './security';

/**
 * The Locus DocumentReference pointer profile, NRL-compatible: one pointer per shared item (the
 * study itself, category 103693007, or a report, 721981007), custodian and author by ODS code.
 */
export const DOCUMENT_REFERENCE_PROFILE = 'https://locus.nhs.example/fhir/StructureDefinition/locus-document-reference';
/** FHIR R5 DocumentReference.modality carried into R4 as a cross-version extension (as IHE MADO does). */
export const MODALITY_EXTENSION = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-DocumentReference.modality';
/** DICOM PS3.16 DCM 110180 "Study Instance UID", the MADO type of a related study identifier. */
const DCM_STUDY_UID_CODE = '110180';

const attachmentSchema = z
  .object({
    contentType: str(256).regex(/^[\w.+-]+\/[\w.+-]+(;.*)?$/, 'must be a MIME type'),
    language: str(32).optional(),
    url: urlSchema,
    size: z.number().int().min(0).optional(),
    hash: z.string().max(128).optional(),
    title: str().optional(),
    creation: z.string().optional(),
  })
  .strict();

const relatesToSchema = z
  .object({
    code: z.enum(['replaces', 'transforms', 'signs', 'appends']),
    target: referenceSchema.refine((r) => r.reference !== undefined || r.identifier !== undefined, 'target needs a reference or an identifier'),
  })
  .strict();

export const documentReferenceSchema = z
  .object({
    resourceType: z.literal('DocumentReference'),
    ...domainResourceShape,
    masterIdentifier: identifierSchema.refine((i) => Boolean(i.system && i.value), 'masterIdentifier needs a system and a value'),
    identifier: z.array(identifierSchema).max(20).optional(),
    status: z.enum(['current', 'superseded', 'entered-in-error']),
    docStatus: z.enum(['preliminary', 'final', 'amended', 'entered-in-error']).optional(),
    type: codeableConceptSchema.refine(
      (t) => (t.coding ?? []).some((c) => (c.system === NICIP_SYSTEM || c.system === SNOMED_SYSTEM) && Boolean(c.code)),
      `type needs a coding from ${NICIP_SYSTEM} or ${SNOMED_SYSTEM} with a code (code system)`,
    ),
    category: z
      .array(codeableConceptSchema)
      .min(1)
      .max(5)
      .refine(
        (cats) => cats.flatMap((c) => c.coding ?? []).filter((c) => c.system === SNOMED_SYSTEM && (c.code === CATEGORY_STUDY || c.code === CATEGORY_REPORT)).length === 1,
        `category needs exactly one SNOMED coding: ${CATEGORY_STUDY} Diagnostic procedure or ${CATEGORY_REPORT} Diagnostic studies report (code value)`,
      ),
    subject: nhsSubjectSchema,
    date: instantSchema.optional(),
    author: z.array(z.union([odsReferenceSchema, referenceSchema])).min(1, 'author is required').max(10),
    authenticator: referenceSchema.optional(),
    custodian: odsReferenceSchema,
    relatesTo: z.array(relatesToSchema).max(10).optional(),
    description: str(10_000).optional(),
    securityLabel: z.array(codeableConceptSchema).max(20).optional(),
    content: z.array(z.object({ attachment: attachmentSchema, format: codingSchema.optional() }).strict()).min(1).max(20),
    context: z
      .object({
        encounter: z.array(referenceSchema).max(10).optional(),
        event: z.array(codeableConceptSchema).max(20).optional(),
        period: periodSchema.optional(),
        facilityType: codeableConceptSchema.optional(),
        practiceSetting: codeableConceptSchema.optional(),
        sourcePatientInfo: referenceSchema.optional(),
        related: z.array(referenceSchema).max(50).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (categoryOf(d) === CATEGORY_STUDY && relatedStudyUids(d).length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['context', 'related'],
        message: `a study pointer (category ${CATEGORY_STUDY}) needs context.related with the Study Instance UID (identifier system ${DICOM_UID_SYSTEM}, value urn:oid:<uid>)`,
      });
    }
    (d.context?.related ?? []).forEach((r, i) => {
      if (r.identifier && isStudyUidIdentifier(r.identifier) && !uidFromUrnOid(r.identifier.value ?? '')) {
        ctx.addIssue({ code: 'custom', path: ['context', 'related', i, 'identifier', 'value'], message: 'identifier value must be urn:oid: followed by a valid DICOM UID' });
      }
    });
  });
export type DocumentReferenceResource = z.infer<typeof documentReferenceSchema>;

function isStudyUidIdentifier(i: Identifier | { system?: string; type?: { coding?: { system?: string; code?: string }[] } }): boolean {
  return i.system === DICOM_UID_SYSTEM || (i.type?.coding ?? []).some((c) => c.system === DCM_SYSTEM && c.code === DCM_STUDY_UID_CODE);
}

function isAccession(i: { type?: { coding?: { system?: string; code?: string }[] } }): boolean {
  return (i.type?.coding ?? []).some((c) => c.system === V2_0203_SYSTEM && c.code === 'ACSN');
}

export function categoryOf(d: DocumentReferenceResource): string {
  const c = d.category.flatMap((x) => x.coding ?? []).find((x) => x.system === SNOMED_SYSTEM && (x.code === CATEGORY_STUDY || x.code === CATEGORY_REPORT));
  return c?.code ?? '';
}

export function relatedStudyUids(d: DocumentReferenceResource): string[] {
  return (d.context?.related ?? [])
    .map((r) => r.identifier)
    .filter((i): i is NonNullable<typeof i> => i !== undefined && isStudyUidIdentifier(i))
    .map((i) => uidFromUrnOid(i.value ?? ''))
    .filter((u): u is string => u !== undefined);
}

export function masterIdentifierToken(d: DocumentReferenceResource): string {
  return `${d.masterIdentifier.system}|${d.masterIdentifier.value}`;
}

export interface DocumentReferenceColumns {
  patient_nhs: string;
  custodian_ods: string;
  master_identifier: string;
  identifiers: string[];
  types: string[];
  categories: string[];
  settings: string[];
  date: Date;
  period_start: Date | null;
  period_end: Date | null;
  status: string;
  related: string[];
  modalities: string[];
  security: string[];
}

/**
 * `related` holds tokens for the MADO `study-instance-uid` and `accession-number` parameters and
 * the ITI-67 `related` reference: `uid|<uid>`, `acsn|<value>`, `ref|<reference>`.
 */
export function documentReferenceColumns(d: DocumentReferenceResource, now: Date): DocumentReferenceColumns {
  const related = new Set<string>();
  for (const r of d.context?.related ?? []) {
    if (r.reference) related.add(`ref|${r.reference}`);
    const i = r.identifier;
    if (!i?.value) continue;
    if (isStudyUidIdentifier(i)) {
      const uid = uidFromUrnOid(i.value);
      if (uid) related.add(`uid|${uid}`);
    }
    if (isAccession(i)) related.add(`acsn|${i.value}`);
  }
  const modalities = (d.extension ?? [])
    .filter((e): e is { url: string; valueCodeableConcept?: { coding?: { system?: string; code?: string }[] } } =>
      (e as { url?: string }).url === MODALITY_EXTENSION)
    .flatMap((e) => e.valueCodeableConcept?.coding ?? [])
    .filter((c) => c.system === DCM_SYSTEM && c.code)
    .map((c) => c.code as string);
  const period = d.context?.period;
  return {
    patient_nhs: d.subject.identifier.value,
    custodian_ods: d.custodian.identifier.value,
    master_identifier: masterIdentifierToken(d),
    identifiers: identifierTokens([d.masterIdentifier, ...(d.identifier ?? [])]),
    types: codingTokens(d.type.coding),
    categories: d.category.flatMap((c) => codingTokens(c.coding)),
    settings: codingTokens(d.context?.practiceSetting?.coding),
    date: d.date ? new Date(d.date) : now,
    period_start: period?.start ? (dateRange(period.start)?.lo ?? null) : null,
    period_end: period?.end ? (dateRange(period.end)?.hi ?? null) : null,
    status: d.status,
    related: [...related],
    modalities: [...new Set(modalities)],
    security: [...securityTokens(d.meta?.security), ...d.securityLabel?.flatMap((s) => codingTokens(s.coding)) ?? []],
  };
}
