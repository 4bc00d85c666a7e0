/**
 * Which DICOM attribute carries the NHS number is a per-trust configuration: most trusts put it
 * in PatientID (0010,0020), optionally qualified by IssuerOfPatientID (0010,0021); others keep a
 * local hospital number in PatientID and the NHS number in OtherPatientIDsSequence (0010,1002)
 * under a known issuer. A study is never published under an identity we cannot validate.
 */
import { z } from 'zod';
import { isValidNhsNumber } from '../registry/nhs-number';
import type { PatientIdentity } from './model';

export const patientIdentityConfigSchema = z.discriminatedUnion('source', [
  z.object({ source: z.literal('PatientID'), issuer: z.string().min(1).optional() }),
  z.object({ source: z.literal('OtherPatientIDsSequence'), issuer: z.string().min(1) }),
]);
export type PatientIdentityConfig = z.infer<typeof patientIdentityConfigSchema>;

export type IdentitySkipReason =
  | 'no-patient-id'
  | 'issuer-mismatch'
  | 'invalid-nhs-number'
  | 'conflicting-nhs-numbers';

export type IdentityResult = { nhsNumber: string } | { skipped: IdentitySkipReason; detail: string };

/** Spaces and hyphens are display formatting ("999 000 0018"), not part of the number. */
function normalise(id: string): string {
  return id.replace(/[\s-]/g, '');
}

const sameIssuer = (a: string | undefined, b: string): boolean => a?.trim().toUpperCase() === b.trim().toUpperCase();

function validated(id: string): IdentityResult {
  const nhs = normalise(id);
  // The detail never echoes the value: it is patient data.
  return isValidNhsNumber(nhs)
    ? { nhsNumber: nhs }
    : { skipped: 'invalid-nhs-number', detail: 'patient identifier is not a valid NHS number (modulus 11)' };
}

export function resolveNhsNumber(patient: PatientIdentity, config: PatientIdentityConfig): IdentityResult {
  if (config.source === 'PatientID') {
    if (!patient.id) return { skipped: 'no-patient-id', detail: 'PatientID (0010,0020) is empty' };
    if (config.issuer && !sameIssuer(patient.issuer, config.issuer)) {
      return { skipped: 'issuer-mismatch', detail: `IssuerOfPatientID is not "${config.issuer}"` };
    }
    return validated(patient.id);
  }
  const ids = [...new Set(patient.otherIds.filter((o) => sameIssuer(o.issuer, config.issuer)).map((o) => normalise(o.id)))];
  if (ids.length === 0) {
    return { skipped: 'no-patient-id', detail: `no OtherPatientIDsSequence item with issuer "${config.issuer}"` };
  }
  if (ids.length > 1) {
    return { skipped: 'conflicting-nhs-numbers', detail: `several different ids under issuer "${config.issuer}"` };
  }
  return validated(ids[0]!);
}
