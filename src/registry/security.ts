import { CONFIDENTIALITY_SYSTEM } from './codes';
import type { Coding } from './fhir-datatypes';
import { codingTokens } from './fhir-datatypes';

/** Security label tokens (meta.security and DocumentReference.securityLabel). */
export function securityTokens(codings: readonly Coding[] | undefined): string[] {
  return codingTokens(codings);
}

/** v3 Confidentiality R (restricted) or V (very restricted): visible to the custodian only. */
export function isRestricted(security: readonly string[]): boolean {
  return security.includes(`${CONFIDENTIALITY_SYSTEM}|R`) || security.includes(`${CONFIDENTIALITY_SYSTEM}|V`);
}
