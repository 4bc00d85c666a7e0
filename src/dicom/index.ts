export * from './model';
export * from './dicom-json';
export * from './extract';
export * from './datetime';
export * from './terminology';
export * from './patient-identity';
export * from './map-study';
export * from './part10';
export type * from './fhir-types';
