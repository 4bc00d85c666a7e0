/**
 * The normalised intermediate model between DICOM (Part 10 files or QIDO-RS DICOM JSON) and the
 * FHIR pointers: only the attributes of shared REFERENCE.md "DICOM → ImagingStudy", plus the SR
 * CompletionFlag/VerificationFlag (PS3.3 C.17.2) and ContentDate/Time for report dates.
 * Never carries pixel data; the patient's name is deliberately absent.
 */
export interface CodedItem {
  codeValue: string;
  codingSchemeDesignator: string;
  codeMeaning?: string;
}

export interface PatientIdentity {
  /** PatientID (0010,0020). */
  id?: string;
  /** IssuerOfPatientID (0010,0021). */
  issuer?: string;
  /** OtherPatientIDsSequence (0010,1002) items. */
  otherIds: Array<{ id: string; issuer?: string }>;
}

export interface DicomInstance {
  sopInstanceUid: string;
  sopClassUid: string;
  instanceNumber?: number;
  /** CompletionFlag (0040,A491): PARTIAL | COMPLETE. */
  completionFlag?: string;
  /** VerificationFlag (0040,A493): UNVERIFIED | VERIFIED. */
  verificationFlag?: string;
  contentDate?: string;
  contentTime?: string;
}

export interface DicomSeries {
  seriesInstanceUid: string;
  seriesNumber?: number;
  modality?: string;
  description?: string;
  bodyPartExamined?: string;
  laterality?: string;
  /** NumberOfSeriesRelatedInstances (0020,1209) when a QIDO answer carries it. */
  numberOfInstances?: number;
  instances: DicomInstance[];
}

export interface DicomStudy {
  studyInstanceUid: string;
  accessionNumber?: string;
  studyDate?: string;
  studyTime?: string;
  /** TimezoneOffsetFromUTC (0008,0201), e.g. "+0100". */
  timezoneOffset?: string;
  modalitiesInStudy: string[];
  description?: string;
  numberOfSeries?: number;
  numberOfInstances?: number;
  patient: PatientIdentity;
  referringPhysicianName?: string;
  procedureCodes: CodedItem[];
  series: DicomSeries[];
}
