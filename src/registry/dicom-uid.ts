/**
 * DICOM UID syntax (PS3.5 §9.1): components of digits separated by '.', no component with a
 * leading zero unless it is the single digit 0, at most 64 characters in all.
 */
export const DICOM_UID_SYSTEM = 'urn:dicom:uid';

const UID_PATTERN = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$/;

export function isValidDicomUid(uid: string): boolean {
  return uid.length <= 64 && UID_PATTERN.test(uid);
}

/** FHIR carries DICOM UIDs as `urn:oid:<uid>` (FHIR R4 ImagingStudy.identifier notes). */
export function uidFromUrnOid(value: string): string | undefined {
  if (!value.startsWith('urn:oid:')) return undefined;
  const uid = value.slice('urn:oid:'.length);
  return isValidDicomUid(uid) ? uid : undefined;
}

export function urnOid(uid: string): string {
  return `urn:oid:${uid}`;
}
