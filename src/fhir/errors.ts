import type { OperationOutcome, OperationOutcomeIssue } from 'fhir/r4';
import { SPINE_ERROR_SYSTEM } from '../registry/codes';

/** NRL / Spine error codes (https://fhir.nhs.uk/CodeSystem/Spine-ErrorOrWarningCode). */
export type SpineCode =
  | 'INVALID_NHS_NUMBER'
  | 'INVALID_PARAMETER'
  | 'INVALID_RESOURCE'
  | 'INVALID_IDENTIFIER_SYSTEM'
  | 'INVALID_IDENTIFIER_VALUE'
  | 'INVALID_CODE_SYSTEM'
  | 'INVALID_CODE_VALUE'
  | 'MESSAGE_NOT_WELL_FORMED'
  | 'NO_RECORD_FOUND'
  | 'DUPLICATE_REJECTED'
  | 'ACCESS_DENIED'
  | 'ACCESS_DENIED_LEVEL'
  | 'AUTHOR_CREDENTIALS_ERROR'
  | 'MISSING_OR_INVALID_HEADER'
  | 'UNPROCESSABLE_ENTITY'
  | 'INVALID_REQUEST_TYPE'
  | 'CONFLICT'
  | 'PRECONDITION_FAILED'
  | 'RESOURCE_DELETED'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOO_MANY_REQUESTS'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR'
  | 'RESOURCE_CREATED'
  | 'RESOURCE_UPDATED'
  | 'RESOURCE_UNCHANGED'
  | 'RESOURCE_SUPERSEDED'
  | 'RESOURCE_DELETED_OK';

export type IssueCode = OperationOutcomeIssue['code'];
export type Severity = OperationOutcomeIssue['severity'];

export interface IssueDetail {
  code: IssueCode;
  diagnostics: string;
  spine?: SpineCode;
  expression?: string[];
  severity?: Severity;
}

/**
 * The one error type of the request path: an HTTP status with one or more OperationOutcome
 * issues. Mapped to a response in one place (fhir/respond.ts); anything else becomes 500.
 */
export class FhirError extends Error {
  readonly issues: IssueDetail[];

  constructor(
    readonly status: number,
    code: IssueCode,
    diagnostics: string,
    spine?: SpineCode,
    expression?: string | string[],
  ) {
    super(diagnostics);
    this.name = 'FhirError';
    this.issues = [{ code, diagnostics, spine, expression: expression === undefined ? undefined : [expression].flat() }];
  }

  static many(status: number, issues: IssueDetail[]): FhirError {
    const first = issues[0] ?? { code: 'invalid' as const, diagnostics: 'invalid request' };
    const e = new FhirError(status, first.code, issues.map((i) => i.diagnostics).join('; '), first.spine);
    e.issues.splice(0, e.issues.length, ...issues);
    return e;
  }
}

export const badRequest = (diagnostics: string, expression?: string, spine: SpineCode = 'INVALID_PARAMETER'): FhirError =>
  new FhirError(400, 'invalid', diagnostics, spine, expression);
export const unprocessable = (diagnostics: string, expression?: string, spine: SpineCode = 'INVALID_RESOURCE'): FhirError =>
  new FhirError(422, 'processing', diagnostics, spine, expression);
export const notFound = (diagnostics: string): FhirError => new FhirError(404, 'not-found', diagnostics, 'NO_RECORD_FOUND');
export const forbidden = (diagnostics: string, spine: SpineCode = 'ACCESS_DENIED'): FhirError =>
  new FhirError(403, 'forbidden', diagnostics, spine);
export const unauthorized = (diagnostics: string): FhirError => new FhirError(401, 'login', diagnostics, 'MISSING_OR_INVALID_HEADER');

export function issue(detail: IssueDetail): OperationOutcomeIssue {
  const out: OperationOutcomeIssue = { severity: detail.severity ?? 'error', code: detail.code };
  if (detail.spine) {
    out.details = { coding: [{ system: SPINE_ERROR_SYSTEM, code: detail.spine, display: spineDisplay(detail.spine) }] };
  }
  out.diagnostics = detail.diagnostics;
  if (detail.expression) out.expression = detail.expression;
  return out;
}

export function operationOutcome(issues: IssueDetail[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues.map(issue) };
}

export function informational(spine: SpineCode, diagnostics: string): OperationOutcome {
  return operationOutcome([{ severity: 'information', code: 'informational', spine, diagnostics }]);
}

function spineDisplay(code: SpineCode): string {
  return code
    .toLowerCase()
    .split('_')
    .map((w, i) => (i === 0 ? w[0]?.toUpperCase() + w.slice(1) : w))
    .join(' ');
}
