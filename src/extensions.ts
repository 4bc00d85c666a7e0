import type { AppExtension } from './fhir/app';

/** Capabilities beyond the registry core plug in here (audit review, consent, resolve, ...). */
export function extensions(): AppExtension[] {
  return [];
}
