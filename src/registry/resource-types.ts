import type { z } from 'zod';
import { ENDPOINT_PROFILE, endpointSchema } from './endpoint';
import { DOCUMENT_REFERENCE_PROFILE, documentReferenceSchema } from './document-reference';
import { IMAGING_STUDY_PROFILE, imagingStudySchema } from './imaging-study';
import { ORGANIZATION_PROFILE, organizationSchema } from './organization';
import { CONSENT_PROFILE, consentSchema } from './consent';
import type { SearchParamDef } from './search-params';
import {
  dateParam,
  idParam,
  identifierParam,
  instantParam,
  locusSearchParameter,

  odsToken,
  patientIdentifier,
  patientReference,
  prefixedTokens,
  referenceIds,
  referenceScalar,
  stringParam,
  studyUidValues,
  tokenArray,
  tokenScalar,
} from './search-params';
import { DCM_SYSTEM } from './codes';

export type ResourceType = 'Organization' | 'Endpoint' | 'ImagingStudy' | 'DocumentReference' | 'Consent';
export type TypeInteraction = 'read' | 'vread' | 'update' | 'delete' | 'history-instance' | 'create' | 'search-type';

export interface SortDef {
  /** `_sort` value without the minus sign. */
  name: string;
  column: string;
  /** Column type for the keyset cursor. */
  kind: 'timestamp';
}

export interface ResourceTypeDef {
  type: ResourceType;
  table: string;
  /** Columns written for each row, in the table's terms (id, version, last_updated, resource included). */
  columns: readonly string[];
  profile: string;
  schema: z.ZodType;
  /** Pointers carry patient data: consent policy, patient-scoped search and audit apply. */
  pointer: boolean;
  interactions: readonly TypeInteraction[];
  conditionalCreate: boolean;
  conditionalUpdate: boolean;
  searchParams: readonly SearchParamDef[];
  sorts: readonly SortDef[];
  /** Default `_sort`, with '-' for descending. */
  defaultSort: string;
}

const ALL_INTERACTIONS: readonly TypeInteraction[] = ['read', 'vread', 'update', 'delete', 'history-instance', 'create', 'search-type'];
const COMMON = ['id', 'version', 'last_updated', 'resource'] as const;

const common = (type: string): SearchParamDef[] => [
  { name: '_id', type: 'token', expression: `${type}.id`, documentation: 'Logical id', compile: idParam('_id') },
  {
    name: '_lastUpdated',
    type: 'date',
    expression: `${type}.meta.lastUpdated`,
    documentation: 'When the resource version last changed (SMART Imaging Access: _lastUpdated=gt...)',
    compile: instantParam('last_updated', '_lastUpdated'),
  },
];

const lastUpdatedSort: SortDef = { name: '_lastUpdated', column: 'last_updated', kind: 'timestamp' };

const patientParams = (type: string, path: string): SearchParamDef[] => [
  { name: 'patient.identifier', type: 'token', expression: `${type}.${path}.identifier`, documentation: 'The patient by NHS number (https://fhir.nhs.uk/Id/nhs-number|<nhs>)', patient: true, compile: patientIdentifier('patient.identifier') },
  { name: 'subject:identifier', type: 'token', expression: `${type}.${path}.identifier`, documentation: 'NRL style: the subject by NHS number', patient: true, compile: patientIdentifier('subject:identifier') },
  { name: 'subject.identifier', type: 'token', expression: `${type}.${path}.identifier`, documentation: 'The subject by NHS number', patient: true, compile: patientIdentifier('subject.identifier') },
  { name: 'patient', type: 'reference', expression: `${type}.${path}`, documentation: 'Patient/<NHS number> (Locus has no Patient resources; the logical id is the NHS number)', patient: true, compile: patientReference('patient') },
];

export const imagingStudyDef: ResourceTypeDef = {
  type: 'ImagingStudy',
  table: 'imaging_study',
  columns: [...COMMON, 'patient_nhs', 'custodian_ods', 'study_uid', 'identifiers', 'modalities', 'started', 'started_end', 'status', 'endpoint_ids', 'security'],
  profile: IMAGING_STUDY_PROFILE,
  schema: imagingStudySchema,
  pointer: true,
  interactions: ALL_INTERACTIONS,
  conditionalCreate: true,
  conditionalUpdate: true,
  searchParams: [
    ...common('ImagingStudy'),
    ...patientParams('ImagingStudy', 'subject'),
    { name: 'identifier', type: 'token', expression: 'ImagingStudy.identifier', documentation: 'Study Instance UID (urn:dicom:uid|urn:oid:<uid>, or urn:oid:<uid>) or accession number (identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|ACSN|<value>)', modifiers: ['of-type'], selective: true, compile: identifierParam('identifiers', 'identifier') },
    { name: 'modality', type: 'token', expression: 'ImagingStudy.series.modality | ImagingStudy.modality', documentation: `Modality (${DCM_SYSTEM}|CT)`, compile: (v, m, b, a) => tokenArray('modalities', 'modality')(v.map((x) => x.replace(`${DCM_SYSTEM}|`, '')), m, b, a) },
    { name: 'started', type: 'date', expression: 'ImagingStudy.started', documentation: 'When the study started (eq, ne, gt, lt, ge, le, sa, eb; partial dates)', compile: dateParam('started', 'started_end', 'started') },
    { name: 'status', type: 'token', expression: 'ImagingStudy.status', documentation: 'registered | available | cancelled | entered-in-error | unknown', compile: tokenScalar('status', 'status', 'http://hl7.org/fhir/imagingstudy-status', ['registered', 'available', 'cancelled', 'entered-in-error', 'unknown']) },
    { name: 'custodian', type: 'token', expression: 'ImagingStudy.endpoint.resolve().managingOrganization', definition: locusSearchParameter('ImagingStudy-custodian'), documentation: 'The custodian organisation by ODS code (https://fhir.nhs.uk/Id/ods-organization-code|RRK)', compile: odsToken('custodian_ods', 'custodian') },
    { name: 'endpoint', type: 'reference', expression: 'ImagingStudy.endpoint', documentation: 'Endpoint/<id>', compile: referenceIds('endpoint_ids', 'endpoint', 'Endpoint') },
  ],
  sorts: [{ name: 'started', column: 'started', kind: 'timestamp' }, lastUpdatedSort],
  defaultSort: '-started',
};

export const documentReferenceDef: ResourceTypeDef = {
  type: 'DocumentReference',
  table: 'document_reference',
  columns: [...COMMON, 'patient_nhs', 'custodian_ods', 'master_identifier', 'identifiers', 'types', 'categories', 'settings', 'date', 'period_start', 'period_end', 'status', 'related', 'modalities', 'security'],
  profile: DOCUMENT_REFERENCE_PROFILE,
  schema: documentReferenceSchema,
  pointer: true,
  interactions: ALL_INTERACTIONS,
  conditionalCreate: true,
  conditionalUpdate: true,
  searchParams: [
    ...common('DocumentReference'),
    ...patientParams('DocumentReference', 'subject'),
    { name: 'identifier', type: 'token', expression: 'DocumentReference.masterIdentifier | DocumentReference.identifier', documentation: 'masterIdentifier or identifier (ITI-67)', modifiers: ['of-type'], selective: true, compile: identifierParam('identifiers', 'identifier') },
    { name: 'type', type: 'token', expression: 'DocumentReference.type', documentation: 'Procedure or record type: system|code checks system and code (NICIP or SNOMED)', compile: tokenArray('types', 'type') },
    { name: 'category', type: 'token', expression: 'DocumentReference.category', documentation: 'SNOMED 103693007 (study) or 721981007 (report)', compile: tokenArray('categories', 'category') },
    { name: 'custodian', type: 'reference', expression: 'DocumentReference.custodian', documentation: 'Custodian by ODS code', compile: odsToken('custodian_ods', 'custodian') },
    { name: 'custodian:identifier', type: 'token', expression: 'DocumentReference.custodian.identifier', documentation: 'NRL style: custodian by ODS identifier', compile: odsToken('custodian_ods', 'custodian:identifier') },
    { name: 'date', type: 'date', expression: 'DocumentReference.date', documentation: 'When the pointer was created', compile: instantParam('date', 'date') },
    { name: 'status', type: 'token', expression: 'DocumentReference.status', documentation: 'current (default) | superseded | entered-in-error', compile: tokenScalar('status', 'status', 'http://hl7.org/fhir/document-reference-status', ['current', 'superseded', 'entered-in-error']) },
    { name: 'related', type: 'reference', expression: 'DocumentReference.context.related', documentation: 'Related reference (ITI-67), e.g. ImagingStudy/<id>', compile: prefixedTokens('related', 'ref', (vs) => vs) },
    { name: 'security-label', type: 'token', expression: 'DocumentReference.securityLabel | DocumentReference.meta.security', documentation: 'Security label (v3 Confidentiality R/V)', compile: tokenArray('security', 'security-label') },
    { name: 'setting', type: 'token', expression: 'DocumentReference.context.practiceSetting', documentation: 'Practice setting (SNOMED 708175003 Diagnostic imaging service)', compile: tokenArray('settings', 'setting') },
    { name: 'period', type: 'date', expression: 'DocumentReference.context.period', documentation: 'Time of service', compile: dateParam('period_start', 'period_end', 'period') },
    { name: 'study-instance-uid', type: 'token', expression: "DocumentReference.context.related.identifier.where(type.coding.where(system='http://dicom.nema.org/resources/ontology/DCM' and code='110180').exists())", definition: 'https://profiles.ihe.net/RAD/MADO/SearchParameter/SearchParameterDocumentReferenceStudyInstanceUid', documentation: 'IHE MADO: Study Instance UID of the related study', selective: true, compile: prefixedTokens('related', 'uid', (vs) => studyUidValues(vs, 'study-instance-uid')) },
    { name: 'accession-number', type: 'token', expression: "DocumentReference.context.related.identifier.where(type.coding.where(system='http://terminology.hl7.org/CodeSystem/v2-0203' and code='ACSN').exists())", definition: locusSearchParameter('DocumentReference-accession-number'), documentation: 'IHE MADO: accession number of the related study', compile: prefixedTokens('related', 'acsn', (vs) => vs.map((v) => v.slice(v.lastIndexOf('|') + 1))) },
    { name: 'modality', type: 'token', expression: "DocumentReference.extension('http://hl7.org/fhir/5.0/StructureDefinition/extension-DocumentReference.modality').value", definition: 'https://profiles.ihe.net/RAD/MADO/SearchParameter/SearchParameterDocumentReferenceModality', documentation: 'IHE MADO: modality (R5 DocumentReference.modality extension)', compile: (v, m, b, a) => tokenArray('modalities', 'modality')(v.map((x) => x.replace(`${DCM_SYSTEM}|`, '')), m, b, a) },
  ],
  sorts: [{ name: 'date', column: 'date', kind: 'timestamp' }, lastUpdatedSort],
  defaultSort: '-date',
};

export const organizationDef: ResourceTypeDef = {
  type: 'Organization',
  table: 'organization',
  columns: [...COMMON, 'ods', 'name_lower', 'kind', 'active', 'identifiers'],
  profile: ORGANIZATION_PROFILE,
  schema: organizationSchema,
  pointer: false,
  interactions: ALL_INTERACTIONS,
  conditionalCreate: true,
  conditionalUpdate: true,
  searchParams: [
    ...common('Organization'),
    { name: 'identifier', type: 'token', expression: 'Organization.identifier', documentation: 'ODS code (https://fhir.nhs.uk/Id/ods-organization-code|RRK)', compile: tokenArray('identifiers', 'identifier') },
    { name: 'name', type: 'string', expression: 'Organization.name', documentation: 'Name (starts with; :exact, :contains)', modifiers: ['exact', 'contains'], compile: stringParam('name_lower', 'name') },
  ],
  sorts: [lastUpdatedSort],
  defaultSort: '_lastUpdated',
};

export const endpointDef: ResourceTypeDef = {
  type: 'Endpoint',
  table: 'endpoint',
  columns: [...COMMON, 'managing_org_id', 'managing_ods', 'connection_type', 'status', 'name_lower', 'identifiers', 'address'],
  profile: ENDPOINT_PROFILE,
  schema: endpointSchema,
  pointer: false,
  interactions: ALL_INTERACTIONS,
  conditionalCreate: true,
  conditionalUpdate: true,
  searchParams: [
    ...common('Endpoint'),
    { name: 'identifier', type: 'token', expression: 'Endpoint.identifier', documentation: 'Identifier', compile: tokenArray('identifiers', 'identifier') },
    { name: 'name', type: 'string', expression: 'Endpoint.name', documentation: 'Name (starts with; :exact, :contains)', modifiers: ['exact', 'contains'], compile: stringParam('name_lower', 'name') },
    { name: 'organization', type: 'reference', expression: 'Endpoint.managingOrganization', documentation: 'Organization/<id>', compile: referenceScalar('managing_org_id', 'organization', 'Organization') },
    { name: 'organization:identifier', type: 'token', expression: 'Endpoint.managingOrganization.identifier', definition: locusSearchParameter('Endpoint-organization-identifier'), documentation: 'The managing organisation by ODS code', compile: odsToken('managing_ods', 'organization:identifier') },
    { name: 'connection-type', type: 'token', expression: 'Endpoint.connectionType', documentation: 'dicom-wado-rs | dicom-qido-rs | ...', compile: tokenScalar('connection_type', 'connection-type', 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type') },
    { name: 'status', type: 'token', expression: 'Endpoint.status', documentation: 'active | suspended | error | off | entered-in-error | test', compile: tokenScalar('status', 'status', 'http://hl7.org/fhir/endpoint-status') },
  ],
  sorts: [lastUpdatedSort],
  defaultSort: '_lastUpdated',
};

export const consentDef: ResourceTypeDef = {
  type: 'Consent',
  table: 'consent',
  columns: [...COMMON, 'patient_nhs', 'custodian_ods', 'status', 'rules'],
  profile: CONSENT_PROFILE,
  schema: consentSchema,
  pointer: false,
  interactions: ALL_INTERACTIONS,
  conditionalCreate: false,
  conditionalUpdate: false,
  searchParams: [
    ...common('Consent'),
    ...patientParams('Consent', 'patient'),
    { name: 'status', type: 'token', expression: 'Consent.status', documentation: 'draft | proposed | active | rejected | inactive | entered-in-error', compile: tokenScalar('status', 'status', 'http://hl7.org/fhir/consent-state-codes') },
  ],
  sorts: [lastUpdatedSort],
  defaultSort: '-_lastUpdated',
};

export const RESOURCE_TYPES: readonly ResourceTypeDef[] = [imagingStudyDef, documentReferenceDef, organizationDef, endpointDef, consentDef];

export function resourceTypeDef(type: string): ResourceTypeDef | undefined {
  return RESOURCE_TYPES.find((d) => d.type === type);
}
