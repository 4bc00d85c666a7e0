import { z } from 'zod';
import { NHS_NUMBER_SYSTEM, isValidNhsNumber } from './nhs-number';
import { ODS_SYSTEM } from './codes';

/** `subject: { identifier: { system: nhs-number, value } }` — the patient by NHS number (NRL). */
export const nhsSubjectSchema = z
  .object({
    identifier: z
      .object({
        system: z.literal(NHS_NUMBER_SYSTEM, { message: `identifier system must be ${NHS_NUMBER_SYSTEM}` }),
        value: z.string().refine(isValidNhsNumber, 'not a valid NHS number (10 digits with a modulus-11 check digit)'),
      })
      .strict(),
    reference: z.string().max(512).optional(),
    display: z.string().max(256).optional(),
    type: z.literal('Patient').optional(),
  })
  .strict();

/** An ODS code: capital letters and digits (nothing that could end a SQL string literal: policy-directory.ts relies on it). */
export const ODS_CODE = /^[A-Z0-9]{1,10}$/;

export const odsCodeSchema = z.string().regex(ODS_CODE, 'identifier value must be an ODS code (capital letters and digits)');

/** `{ identifier: { system: ods-organization-code, value } }`: an organisation by ODS code. */
export const odsReferenceSchema = z
  .object({
    identifier: z
      .object({
        system: z.literal(ODS_SYSTEM, { message: `identifier system must be ${ODS_SYSTEM}` }),
        value: odsCodeSchema,
      })
      .strict(),
    reference: z.string().max(512).optional(),
    display: z.string().max(256).optional(),
    type: z.literal('Organization').optional(),
  })
  .strict();
