import { z } from 'zod';
import { ALL_MODALITIES, DCM_SYSTEM, V2_0203_SYSTEM } from './codes';
import { DICOM_UID_SYSTEM, isValidDicomUid, uidFromUrnOid } from './dicom-uid';
import {
  codeableConceptSchema,
  codingSchema,
  dateRange,
  dateTimeSchema,
  domainResourceShape,
  identifierSchema,
  referenceSchema,
  str,
  tokens,

} from './fhir-datatypes';
import type { Identifier } from './fhir-datatypes';
import { nhsSubjectSchema } from './nhs-identifier';
import { securityTokens } from './security';

/**
 * The Locus ImagingStudy pointer profile (fhir-profiles/StructureDefinition-locus-imaging-study.json):
 * one pointer per study per custodian, patient by NHS number, Study Instance UID as identifier,
 * at least one DCM modality, and the custodian's WADO-RS Endpoint.
 */
export const IMAGING_STUDY_PROFILE = 'https://locus.nhs.example/fhir/StructureDefinition/locus-imaging-study';

const uidString = z.string().refine(isValidDicomUid, 'not a valid DICOM UID (dot-separated digits, no leading zeros, at most 64 characters)');
const dcmCoding = codingSchema.refine((c) => c.system === DCM_SYSTEM, `modality code system must be ${DCM_SYSTEM}`).refine(
  (c) => c.code !== undefined && ALL_MODALITIES.has(c.code),
  'modality code value is not a known code of DICOM PS3.16 CID 29/33',
);

const instanceSchema = z
  .object({ uid: uidString, sopClass: codingSchema, number: z.number().int().min(0).optional(), title: str().optional() })
  .strict();

const seriesSchema = z
  .object({
    uid: uidString,
    number: z.number().int().min(0).optional(),
    modality: dcmCoding,
    description: str().optional(),
    numberOfInstances: z.number().int().min(0).optional(),
    endpoint: z.array(referenceSchema).max(10).optional(),
    bodySite: codingSchema.optional(),
    laterality: codingSchema.optional(),
    specimen: z.array(referenceSchema).optional(),
    started: dateTimeSchema.optional(),
    performer: z.array(z.object({}).loose()).max(20).optional(),
    instance: z.array(instanceSchema).max(100_000).optional(),
  })
  .strict();

export const imagingStudySchema = z
  .object({
    resourceType: z.literal('ImagingStudy'),
    ...domainResourceShape,
    identifier: z.array(identifierSchema).min(1).max(20),
    status: z.enum(['registered', 'available', 'cancelled', 'entered-in-error', 'unknown']),
    modality: z.array(dcmCoding).min(1, 'at least one DCM modality is required').max(20),
    subject: nhsSubjectSchema,
    encounter: referenceSchema.optional(),
    started: dateTimeSchema,
    basedOn: z.array(referenceSchema).max(20).optional(),
    referrer: referenceSchema.optional(),
    interpreter: z.array(referenceSchema).max(20).optional(),
    endpoint: z.array(referenceSchema).min(1, 'the custodian\'s dicom-wado-rs Endpoint is required').max(5),
    numberOfSeries: z.number().int().min(0).optional(),
    numberOfInstances: z.number().int().min(0).optional(),
    procedureReference: referenceSchema.optional(),
    procedureCode: z.array(codeableConceptSchema).max(20).optional(),
    location: referenceSchema.optional(),
    reasonCode: z.array(codeableConceptSchema).max(20).optional(),
    reasonReference: z.array(referenceSchema).max(20).optional(),
    note: z.array(z.object({ text: str(10_000) }).loose()).max(20).optional(),
    description: str().optional(),
    series: z.array(seriesSchema).max(10_000).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const uids = s.identifier.filter((i) => i.system === DICOM_UID_SYSTEM);
    if (uids.length !== 1) {
      ctx.addIssue({ code: 'custom', path: ['identifier'], message: `exactly one identifier with system ${DICOM_UID_SYSTEM} (the Study Instance UID) is required` });
      return;
    }
    const index = s.identifier.indexOf(uids[0] as Identifier);
    if (!uids[0]?.value || !uidFromUrnOid(uids[0].value)) {
      ctx.addIssue({ code: 'custom', path: ['identifier', index, 'value'], message: 'identifier value must be urn:oid: followed by a valid DICOM UID' });
    }
    s.identifier.forEach((id, i) => {
      if (!id.value) ctx.addIssue({ code: 'custom', path: ['identifier', i, 'value'], message: 'identifier value is required' });
    });
  });
export type ImagingStudyResource = z.infer<typeof imagingStudySchema>;

export function studyUidOf(s: ImagingStudyResource): string {
  const v = s.identifier.find((i) => i.system === DICOM_UID_SYSTEM)?.value ?? '';
  return v.slice('urn:oid:'.length);
}

function isAccession(i: Identifier): boolean {
  return (i.type?.coding ?? []).some((c) => c.system === V2_0203_SYSTEM && c.code === 'ACSN');
}

/** Identifier tokens: `system|value`, bare `value`, and `of-type` tokens for `identifier:of-type`. */
export function identifierTokens(identifiers: readonly Identifier[]): string[] {
  const out = new Set<string>();
  for (const i of identifiers) {
    for (const t of tokens(i.system, i.value)) out.add(t);
    for (const c of i.type?.coding ?? []) if (c.system && c.code && i.value) out.add(`of-type:${c.system}|${c.code}|${i.value}`);
  }
  return [...out];
}

export interface ImagingStudyColumns {
  patient_nhs: string;
  custodian_ods: string;
  study_uid: string;
  identifiers: string[];
  modalities: string[];
  started: Date;
  started_end: Date;
  status: string;
  endpoint_ids: string[];
  security: string[];
}

export function imagingStudyColumns(s: ImagingStudyResource, custodian: string, endpointIds: string[]): ImagingStudyColumns {
  const range = dateRange(s.started);
  if (!range) throw new Error('started was validated as a FHIR dateTime');
  const modalities = new Set<string>();
  for (const m of s.modality) if (m.code) modalities.add(m.code);
  for (const se of s.series ?? []) if (se.modality.code) modalities.add(se.modality.code);
  return {
    patient_nhs: s.subject.identifier.value,
    custodian_ods: custodian,
    study_uid: studyUidOf(s),
    identifiers: identifierTokens(s.identifier),
    modalities: [...modalities],
    started: range.lo,
    started_end: range.hi,
    status: s.status,
    endpoint_ids: endpointIds,
    security: securityTokens(s.meta?.security),
  };
}

export function accessionOf(s: ImagingStudyResource): string | undefined {
  return s.identifier.find(isAccession)?.value;
}
