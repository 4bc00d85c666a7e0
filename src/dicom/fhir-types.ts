/**
 * The FHIR R4 shapes the mapping emits (only the elements Locus pointers use). The installed
 * @types/fhir is STU3, so these are written out from the R4 ImagingStudy and DocumentReference
 * definitions.
 */
export interface Coding { system: string; code: string; display?: string }
export interface CodeableConcept { coding?: Coding[]; text?: string }
export interface Identifier {
  system?: string;
  value: string;
  type?: CodeableConcept;
  assigner?: { identifier: Identifier };
}
export interface LogicalReference { identifier: Identifier }

export interface ImagingStudyInstance { uid: string; sopClass: Coding; number?: number }
export interface ImagingStudySeries {
  uid: string;
  number?: number;
  modality: Coding;
  description?: string;
  numberOfInstances: number;
  bodySite?: Coding;
  laterality?: Coding;
  instance: ImagingStudyInstance[];
}
export interface ImagingStudy {
  resourceType: 'ImagingStudy';
  identifier: Identifier[];
  status: 'available';
  modality: Coding[];
  subject: LogicalReference;
  started?: string;
  referrer?: { display: string };
  endpoint: Array<{ reference: string }>;
  numberOfSeries: number;
  numberOfInstances: number;
  procedureCode?: CodeableConcept[];
  description?: string;
  series: ImagingStudySeries[];
}

export interface DocumentReference {
  resourceType: 'DocumentReference';
  masterIdentifier: { system: string; value: string };
  status: 'current';
  docStatus?: 'final' | 'preliminary';
  type: CodeableConcept;
  category: CodeableConcept[];
  subject: LogicalReference;
  date: string;
  author: LogicalReference[];
  custodian: LogicalReference;
  content: Array<{ attachment: { contentType: string; url: string } }>;
  context: {
    period?: { start: string };
    practiceSetting: CodeableConcept;
    related: LogicalReference[];
  };
}
