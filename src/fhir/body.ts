import type { HttpRequest as Request } from './http';
import { FhirError, badRequest } from './errors';

export const MAX_JSON_DEPTH = 64;

const FHIR_JSON = /^application\/(fhir\+)?json(\s*;.*)?$/i;

/**
 * Nesting depth of a JSON text, found by a scan that skips strings, before any parse: a body of
 * a million opening brackets is refused without building anything.
 */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      depth++;
      if (depth > max) max = depth;
      if (max > MAX_JSON_DEPTH) return max;
    } else if (c === 125 || c === 93) depth--;
  }
  return max;
}

/** The request body as a JSON object: right content type, bounded depth, well formed. */
export function jsonBody(req: Request): Record<string, unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!FHIR_JSON.test(type)) {
    throw new FhirError(415, 'not-supported', `Content-Type must be application/fhir+json (or application/json), not ${type.slice(0, 100) || 'absent'}`, 'MESSAGE_NOT_WELL_FORMED');
  }
  const text = typeof req.body === 'string' ? req.body : '';
  if (text.trim() === '') throw badRequest('the request body is empty: a FHIR resource is expected', undefined, 'MESSAGE_NOT_WELL_FORMED');
  if (jsonDepth(text) > MAX_JSON_DEPTH) throw badRequest(`the JSON body is nested more than ${MAX_JSON_DEPTH} levels deep`, undefined, 'MESSAGE_NOT_WELL_FORMED');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw badRequest(`the body is not valid JSON: ${e instanceof Error ? e.message.slice(0, 200) : 'parse error'}`, undefined, 'MESSAGE_NOT_WELL_FORMED');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest('the body must be a JSON object (a FHIR resource)', undefined, 'MESSAGE_NOT_WELL_FORMED');
  }
  return value as Record<string, unknown>;
}

export function expectResourceType(body: Record<string, unknown>, type: string): void {
  if (body.resourceType !== type) {
    throw badRequest(
      `resourceType ${typeof body.resourceType === 'string' ? body.resourceType.slice(0, 64) : '(missing)'} does not match the URL: ${type} expected`,
      `${type}.resourceType`,
      'INVALID_RESOURCE',
    );
  }
}

/** Query parameters in order, from the raw URL (repeats kept: they AND together). */
export function queryParams(req: Request): [string, string][] {
  const q = req.originalUrl.indexOf('?');
  if (q < 0) return [];
  try {
    return [...new URLSearchParams(req.originalUrl.slice(q + 1))];
  } catch {
    throw badRequest('the query string cannot be decoded');
  }
}
