/**
 * DICOM JSON datasets (a Part 10 header read by dcmjs, or a QIDO-RS result) → the normalised
 * model. Study, series and instance levels follow the QIDO-RS attribute levels of PS3.18 §10.6.
 */
import type { DicomInstance, DicomSeries, DicomStudy, PatientIdentity, CodedItem } from './model';
import {
  TAG, getNumber, getPersonName, getSequence, getString, getStrings, type DicomJsonDataset,
} from './dicom-json';

function defined<T extends object>(obj: T): T {
  for (const key of Object.keys(obj) as Array<keyof T>) if (obj[key] === undefined) delete obj[key];
  return obj;
}

function patientFromDataset(ds: DicomJsonDataset): PatientIdentity {
  const otherIds = getSequence(ds, TAG.OtherPatientIDsSequence).flatMap((item) => {
    const id = getString(item, TAG.PatientID);
    return id ? [defined({ id, issuer: getString(item, TAG.IssuerOfPatientID) })] : [];
  });
  return defined({ id: getString(ds, TAG.PatientID), issuer: getString(ds, TAG.IssuerOfPatientID), otherIds });
}

function procedureCodes(ds: DicomJsonDataset): CodedItem[] {
  return getSequence(ds, TAG.ProcedureCodeSequence).flatMap((item) => {
    const codeValue = getString(item, TAG.CodeValue);
    const codingSchemeDesignator = getString(item, TAG.CodingSchemeDesignator);
    if (!codeValue || !codingSchemeDesignator) return [];
    return [defined({ codeValue, codingSchemeDesignator, codeMeaning: getString(item, TAG.CodeMeaning) })];
  });
}

/** Study-level attributes (series and instances are filled in separately). */
export function studyFromDataset(ds: DicomJsonDataset): Omit<DicomStudy, 'series'> | undefined {
  const studyInstanceUid = getString(ds, TAG.StudyInstanceUID);
  if (!studyInstanceUid) return undefined;
  return defined({
    studyInstanceUid,
    accessionNumber: getString(ds, TAG.AccessionNumber),
    studyDate: getString(ds, TAG.StudyDate),
    studyTime: getString(ds, TAG.StudyTime),
    timezoneOffset: getString(ds, TAG.TimezoneOffsetFromUTC),
    modalitiesInStudy: getStrings(ds, TAG.ModalitiesInStudy).flatMap((m) => m.split('\\')).map((m) => m.trim()).filter(Boolean),
    description: getString(ds, TAG.StudyDescription),
    numberOfSeries: getNumber(ds, TAG.NumberOfStudyRelatedSeries),
    numberOfInstances: getNumber(ds, TAG.NumberOfStudyRelatedInstances),
    patient: patientFromDataset(ds),
    referringPhysicianName: getPersonName(ds, TAG.ReferringPhysicianName),
    procedureCodes: procedureCodes(ds),
  });
}

export function seriesFromDataset(ds: DicomJsonDataset): Omit<DicomSeries, 'instances'> | undefined {
  const seriesInstanceUid = getString(ds, TAG.SeriesInstanceUID);
  if (!seriesInstanceUid) return undefined;
  return defined({
    seriesInstanceUid,
    seriesNumber: getNumber(ds, TAG.SeriesNumber),
    modality: getString(ds, TAG.Modality)?.toUpperCase(),
    description: getString(ds, TAG.SeriesDescription),
    bodyPartExamined: getString(ds, TAG.BodyPartExamined)?.toUpperCase(),
    laterality: getString(ds, TAG.Laterality)?.toUpperCase(),
    numberOfInstances: getNumber(ds, TAG.NumberOfSeriesRelatedInstances),
  });
}

export function instanceFromDataset(ds: DicomJsonDataset): DicomInstance | undefined {
  const sopInstanceUid = getString(ds, TAG.SOPInstanceUID);
  const sopClassUid = getString(ds, TAG.SOPClassUID);
  if (!sopInstanceUid || !sopClassUid) return undefined;
  return defined({
    sopInstanceUid,
    sopClassUid,
    instanceNumber: getNumber(ds, TAG.InstanceNumber),
    completionFlag: getString(ds, TAG.CompletionFlag)?.toUpperCase(),
    verificationFlag: getString(ds, TAG.VerificationFlag)?.toUpperCase(),
    contentDate: getString(ds, TAG.ContentDate),
    contentTime: getString(ds, TAG.ContentTime),
  });
}

/**
 * Groups instance-level datasets (each carrying its study and series attributes, as a Part 10
 * file does) into studies. Memory holds only the model's attributes, never the datasets.
 */
/** What one instance contributes to its study: small, plain and cheap to pass between threads. */
export interface InstanceParts {
  study: Omit<DicomStudy, 'series'>;
  series: Omit<DicomSeries, 'instances'>;
  instance: DicomInstance;
}

export function instancePartsOf(ds: DicomJsonDataset): InstanceParts | undefined {
  const study = studyFromDataset(ds);
  const series = seriesFromDataset(ds);
  const instance = instanceFromDataset(ds);
  return study && series && instance ? { study, series, instance } : undefined;
}

export class StudyCollector {
  private readonly studies = new Map<string, DicomStudy>();
  private readonly seen = new Set<string>();

  /** Adds one instance; returns false when the dataset lacks the UIDs to place it. */
  add(ds: DicomJsonDataset): boolean {
    return this.addParts(instancePartsOf(ds));
  }

  /** Adds one instance already reduced to its parts (e.g. by a header-reading worker). */
  addParts(parts: InstanceParts | undefined): boolean {
    if (!parts) return false;
    const { study, series, instance } = parts;
    let s = this.studies.get(study.studyInstanceUid);
    if (!s) {
      s = { ...study, series: [] };
      this.studies.set(study.studyInstanceUid, s);
    }
    let se = s.series.find((x) => x.seriesInstanceUid === series.seriesInstanceUid);
    if (!se) {
      se = { ...series, instances: [] };
      s.series.push(se);
    }
    // A PACS export may hold the same instance twice (e.g. copies in two folders): count it once.
    const key = `${study.studyInstanceUid}/${instance.sopInstanceUid}`;
    if (!this.seen.has(key)) {
      this.seen.add(key);
      se.instances.push(instance);
    }
    return true;
  }

  get size(): number {
    return this.studies.size;
  }

  values(): DicomStudy[] {
    return [...this.studies.values()];
  }
}
