/** Code and identifier systems Locus uses (see shared REFERENCE.md and the NRL/IHE specs). */
export const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const DCM_SYSTEM = 'http://dicom.nema.org/resources/ontology/DCM';
export const SNOMED_SYSTEM = 'http://snomed.info/sct';
export const NICIP_SYSTEM = 'https://nicip.nhs.uk';
export const V2_0203_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v2-0203';
export const ENDPOINT_CONNECTION_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type';
export const CONFIDENTIALITY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
export const ACT_REASON_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
export const RFC3986_SYSTEM = 'urn:ietf:rfc:3986';
export const SPINE_ERROR_SYSTEM = 'https://fhir.nhs.uk/CodeSystem/Spine-ErrorOrWarningCode';

/** NRL pointer categories (SNOMED CT). */
export const CATEGORY_STUDY = '103693007'; // Diagnostic procedure
export const CATEGORY_REPORT = '721981007'; // Diagnostic studies report
export const PRACTICE_SETTING_IMAGING = '708175003'; // Diagnostic imaging service
/** A generic imaging procedure type when the PACS sends no procedure code (SNOMED 363679005 Imaging). */
export const GENERIC_IMAGING_PROCEDURE = '363679005';

/**
 * DICOM acquisition modalities (PS3.3 C.7.3.1.1.1 defined terms) accepted on a pointer. SR, KO,
 * PR, SEG, DOC are object types rather than acquisitions: accepted on series, not as a study's
 * only modality.
 */
export const ACQUISITION_MODALITIES = new Set([
  'AR', 'ASMT', 'AU', 'BDUS', 'BI', 'BMD', 'CR', 'CT', 'DG', 'DX', 'ECG', 'EPS', 'ES', 'GM', 'HC', 'HD',
  'IO', 'IVOCT', 'IVUS', 'KER', 'LEN', 'LS', 'MG', 'MR', 'NM', 'OAM', 'OCT', 'OP', 'OPM', 'OPT', 'OPTBSV',
  'OPTENF', 'OPV', 'OSS', 'OT', 'PT', 'PX', 'RF', 'RG', 'RTIMAGE', 'SM', 'SRF', 'TG', 'US', 'VA', 'XA', 'XC',
]);
export const NON_ACQUISITION_MODALITIES = new Set([
  'SR', 'KO', 'PR', 'SEG', 'DOC', 'REG', 'RTSTRUCT', 'RTPLAN', 'RTDOSE', 'RTRECORD', 'FID', 'PLAN', 'RWV', 'MPR',
]);
export const ALL_MODALITIES = new Set([...ACQUISITION_MODALITIES, ...NON_ACQUISITION_MODALITIES]);
