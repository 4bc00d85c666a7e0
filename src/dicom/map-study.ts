/**
 * The pure mapping: one normalised DICOM study → the Locus pointers (an ImagingStudy and one
 * DocumentReference for the study plus one per report instance), or a reason to skip it.
 * Shapes follow FHIR R4 ImagingStudy/DocumentReference and the NRL conventions in REFERENCE.md.
 * Output is deterministic (series and instances sorted) so that re-publishing an unchanged study
 * yields an identical resource and the server can answer RESOURCE_UNCHANGED.
 */

import {
  ACQUISITION_MODALITIES, ALL_MODALITIES, CATEGORY_REPORT, CATEGORY_STUDY, DCM_SYSTEM, GENERIC_IMAGING_PROCEDURE,
  ODS_SYSTEM, PRACTICE_SETTING_IMAGING, RFC3986_SYSTEM, SNOMED_SYSTEM, V2_0203_SYSTEM,
} from '../registry/codes';
import { DICOM_UID_SYSTEM, isValidDicomUid, urnOid } from '../registry/dicom-uid';
import { NHS_NUMBER_SYSTEM } from '../registry/nhs-number';
import { DEFAULT_TIME_ZONE, toFhirDateTime, toFhirInstant } from './datetime';
import { personNameDisplay } from './dicom-json';
import type { DicomInstance, DicomSeries, DicomStudy } from './model';
import { resolveNhsNumber, type IdentitySkipReason, type PatientIdentityConfig } from './patient-identity';
import type { Coding, DocumentReference, ImagingStudy, ImagingStudySeries } from './fhir-types';
import { REPORT_SOP_CLASSES, bodySiteCoding, lateralityCoding, procedureSystem } from './terminology';

export interface MapOptions {
  custodianOds: string;
  /** The custodian's WADO-RS base (the Endpoint's address), e.g. https://pacs.example/dicom-web */
  wadoBaseUrl: string;
  /** "Endpoint/<id>" */
  endpointReference: string;
  patientIdentity: PatientIdentityConfig;
  /** IANA zone for times recorded without TimezoneOffsetFromUTC (default Europe/London). */
  timeZone?: string;
  /** Clock for DocumentReference.date when the study has no date at all. */
  now?: () => Date;
}

export type SkipReason = IdentitySkipReason | 'invalid-uid' | 'no-instances';
export type MappedStudy = { imagingStudy: ImagingStudy; documentReferences: DocumentReference[] };
export type MapResult = MappedStudy | { skipped: SkipReason; detail: string };

const byNumberThenUid = <T>(num: (x: T) => number | undefined, uid: (x: T) => string) => (a: T, b: T): number =>
  (num(a) ?? Number.MAX_SAFE_INTEGER) - (num(b) ?? Number.MAX_SAFE_INTEGER) || (uid(a) < uid(b) ? -1 : uid(a) > uid(b) ? 1 : 0);

function sortedSeries(study: DicomStudy): DicomSeries[] {
  return [...study.series]
    .map((s) => ({ ...s, instances: [...s.instances].sort(byNumberThenUid((i: DicomInstance) => i.instanceNumber, (i) => i.sopInstanceUid)) }))
    .sort(byNumberThenUid((s: DicomSeries) => s.seriesNumber, (s) => s.seriesInstanceUid));
}

function invalidUid(study: DicomStudy): string | undefined {
  if (!isValidDicomUid(study.studyInstanceUid)) return 'StudyInstanceUID';
  for (const s of study.series) {
    if (!isValidDicomUid(s.seriesInstanceUid)) return `SeriesInstanceUID of a series in study ${study.studyInstanceUid}`;
    for (const i of s.instances) {
      if (!isValidDicomUid(i.sopInstanceUid) || !isValidDicomUid(i.sopClassUid)) return `SOP Instance/Class UID in series ${s.seriesInstanceUid}`;
    }
  }
  return undefined;
}

/** Study modalities: acquisition modalities only (REFERENCE.md); a reports-only study keeps SR/DOC. */
export function studyModalities(study: DicomStudy): string[] {
  const listed = study.modalitiesInStudy.length > 0 ? study.modalitiesInStudy : study.series.map((s) => s.modality ?? '');
  const known = [...new Set(listed.map((m) => m.trim().toUpperCase()).filter((m) => ALL_MODALITIES.has(m)))].sort();
  const acquisition = known.filter((m) => ACQUISITION_MODALITIES.has(m));
  return acquisition.length > 0 ? acquisition : known.length > 0 ? known : ['OT'];
}

/** ImagingStudy.series.modality is 1..1: a missing or unknown code becomes OT (Other, PS3.3 C.7.3.1.1.1). */
const seriesModality = (m: string | undefined): string => (m && ALL_MODALITIES.has(m) ? m : 'OT');

function procedureCodings(study: DicomStudy): Coding[] {
  return study.procedureCodes.flatMap((c) => {
    const system = procedureSystem(c.codingSchemeDesignator);
    return system ? [{ system, code: c.codeValue, ...(c.codeMeaning ? { display: c.codeMeaning } : {}) }] : [];
  });
}

function mapSeries(s: DicomSeries): ImagingStudySeries {
  const bodySite = bodySiteCoding(s.bodyPartExamined);
  const laterality = lateralityCoding(s.laterality);
  return {
    uid: s.seriesInstanceUid,
    ...(s.seriesNumber !== undefined ? { number: s.seriesNumber } : {}),
    modality: { system: DCM_SYSTEM, code: seriesModality(s.modality) },
    ...(s.description ? { description: s.description } : {}),
    numberOfInstances: s.numberOfInstances ?? s.instances.length,
    ...(bodySite ? { bodySite } : {}),
    ...(laterality ? { laterality } : {}),
    instance: s.instances.map((i) => ({
      uid: i.sopInstanceUid,
      sopClass: { system: RFC3986_SYSTEM, code: urnOid(i.sopClassUid) },
      ...(i.instanceNumber !== undefined ? { number: i.instanceNumber } : {}),
    })),
  };
}

function buildImagingStudy(study: DicomStudy, series: DicomSeries[], nhsNumber: string, started: string | undefined, o: MapOptions): ImagingStudy {
  const procedure = procedureCodings(study);
  return {
    resourceType: 'ImagingStudy',
    identifier: [
      { system: DICOM_UID_SYSTEM, value: urnOid(study.studyInstanceUid) },
      ...(study.accessionNumber
        ? [{
            type: { coding: [{ system: V2_0203_SYSTEM, code: 'ACSN' }] },
            value: study.accessionNumber,
            assigner: { identifier: { system: ODS_SYSTEM, value: o.custodianOds } },
          }]
        : []),
    ],
    status: 'available',
    modality: studyModalities(study).map((code) => ({ system: DCM_SYSTEM, code })),
    subject: { identifier: { system: NHS_NUMBER_SYSTEM, value: nhsNumber } },
    ...(started ? { started } : {}),
    ...(study.referringPhysicianName ? { referrer: { display: personNameDisplay(study.referringPhysicianName) } } : {}),
    endpoint: [{ reference: o.endpointReference }],
    numberOfSeries: study.numberOfSeries ?? series.length,
    numberOfInstances: study.numberOfInstances ?? series.reduce((n, s) => n + s.instances.length, 0),
    ...(procedure.length > 0 ? { procedureCode: procedure.map((c) => ({ coding: [c] })) } : {}),
    ...(study.description ? { description: study.description } : {}),
    series: series.map(mapSeries),
  };
}

interface PointerParts {
  masterUid: string;
  category: { code: string; display: string };
  url: string;
  date: string;
  docStatus?: 'final' | 'preliminary';
}

function buildDocumentReference(study: DicomStudy, nhsNumber: string, started: string | undefined, type: Coding, p: PointerParts, o: MapOptions): DocumentReference {
  const ods = { identifier: { system: ODS_SYSTEM, value: o.custodianOds } };
  return {
    resourceType: 'DocumentReference',
    masterIdentifier: { system: RFC3986_SYSTEM, value: urnOid(p.masterUid) },
    status: 'current',
    ...(p.docStatus ? { docStatus: p.docStatus } : {}),
    type: { coding: [type] },
    category: [{ coding: [{ system: SNOMED_SYSTEM, code: p.category.code, display: p.category.display }] }],
    subject: { identifier: { system: NHS_NUMBER_SYSTEM, value: nhsNumber } },
    date: p.date,
    author: [ods],
    custodian: ods,
    content: [{ attachment: { contentType: 'application/dicom', url: p.url } }],
    context: {
      ...(started ? { period: { start: started } } : {}),
      practiceSetting: { coding: [{ system: SNOMED_SYSTEM, code: PRACTICE_SETTING_IMAGING, display: 'Diagnostic imaging service' }] },
      related: [{ identifier: { system: DICOM_UID_SYSTEM, value: urnOid(study.studyInstanceUid) } }],
    },
  };
}

/** PS3.3 C.17.2: a report is final only when COMPLETE and VERIFIED; otherwise preliminary. */
const reportStatus = (i: DicomInstance): 'final' | 'preliminary' =>
  i.completionFlag === 'COMPLETE' && i.verificationFlag === 'VERIFIED' ? 'final' : 'preliminary';

export function mapStudy(study: DicomStudy, o: MapOptions): MapResult {
  const identity = resolveNhsNumber(study.patient, o.patientIdentity);
  if ('skipped' in identity) return identity;
  const bad = invalidUid(study);
  if (bad) return { skipped: 'invalid-uid', detail: `invalid DICOM UID: ${bad}` };
  const series = sortedSeries(study).filter((s) => s.instances.length > 0);
  if (series.length === 0) return { skipped: 'no-instances', detail: `study ${study.studyInstanceUid} has no instances` };

  const timeZone = o.timeZone ?? DEFAULT_TIME_ZONE;
  const started = toFhirDateTime({ date: study.studyDate, time: study.studyTime, timezoneOffset: study.timezoneOffset, timeZone });
  const studyDate = started ? toFhirInstant(started, timeZone) : (o.now ?? (() => new Date()))().toISOString();
  const type = procedureCodings(study)[0] ?? { system: SNOMED_SYSTEM, code: GENERIC_IMAGING_PROCEDURE, display: 'Imaging' };
  const wado = o.wadoBaseUrl.replace(/\/+$/, '');
  const studyUrl = `${wado}/studies/${study.studyInstanceUid}`;

  const documentReferences = [
    buildDocumentReference(study, identity.nhsNumber, started, type, {
      masterUid: study.studyInstanceUid, category: { code: CATEGORY_STUDY, display: 'Diagnostic procedure' }, url: studyUrl, date: studyDate,
    }, o),
    ...series.flatMap((s) => s.instances.filter((i) => REPORT_SOP_CLASSES.has(i.sopClassUid)).map((i) => {
      const content = toFhirDateTime({ date: i.contentDate, time: i.contentTime, timezoneOffset: study.timezoneOffset, timeZone });
      return buildDocumentReference(study, identity.nhsNumber, started, type, {
        masterUid: i.sopInstanceUid,
        category: { code: CATEGORY_REPORT, display: 'Diagnostic studies report' },
        url: `${studyUrl}/series/${s.seriesInstanceUid}/instances/${i.sopInstanceUid}`,
        date: content ? toFhirInstant(content, timeZone) : studyDate,
        docStatus: reportStatus(i),
      }, o);
    })),
  ];
  return { imagingStudy: buildImagingStudy(study, series, identity.nhsNumber, started, o), documentReferences };
}
