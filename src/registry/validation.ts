import type { z } from 'zod';
import type { IssueDetail, SpineCode } from '../fhir/errors';
import { FhirError } from '../fhir/errors';

/** FHIRPath for a zod issue path: `ImagingStudy.identifier[0].value`. */
export function fhirPath(resourceType: string, path: readonly PropertyKey[]): string {
  let out = resourceType;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  return out;
}

/** Profile failures are 422 (DESIGN: "422 fails profile"), one issue per problem, each with its element. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, resourceType: string): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues: IssueDetail[] = result.error.issues.slice(0, 20).map((i) => {
    const expression = fhirPath(resourceType, i.path);
    const spine: SpineCode = /nhs number/i.test(i.message) ? 'INVALID_NHS_NUMBER' : spineFor(i.message);
    const message = i.code === 'unrecognized_keys' ? `unknown element(s) ${i.keys.join(', ')}` : i.message;
    return { code: i.code === 'unrecognized_keys' ? 'structure' : 'value', diagnostics: `${expression}: ${message}`, spine, expression: [expression] };
  });
  throw FhirError.many(422, issues);
}

function spineFor(message: string): SpineCode {
  if (/identifier system/i.test(message)) return 'INVALID_IDENTIFIER_SYSTEM';
  if (/identifier value|uid/i.test(message)) return 'INVALID_IDENTIFIER_VALUE';
  if (/code system/i.test(message)) return 'INVALID_CODE_SYSTEM';
  if (/code value|not a known code/i.test(message)) return 'INVALID_CODE_VALUE';
  return 'INVALID_RESOURCE';
}

export function profileError(resourceType: string, path: string, message: string, spine: SpineCode = 'INVALID_RESOURCE'): FhirError {
  const expression = `${resourceType}.${path}`;
  return new FhirError(422, 'value', `${expression}: ${message}`, spine, expression);
}
