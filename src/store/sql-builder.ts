import type { SqlValue } from './database';

/**
 * Collects positional parameters while a statement is composed: values from requests never enter
 * the SQL text. (The one exception is not a request's: the sharing policy writes a caller's
 * custodian lists, taken from the directory and each checked to be an ODS code, as constants,
 * so that PostgreSQL hashes them; policy-directory.ts.)
 */
export class SqlBuilder {
  readonly params: SqlValue[] = [];
  private readonly bound = new Map<string, Map<string, string>>();

  param(value: SqlValue): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  /**
   * A text value cast to `type`, bound once however often the statement uses it: predicates that
   * repeat the caller's organisation or a custodian list share one placeholder (fewer values to
   * send and for PostgreSQL to parse).
   */
  text(value: string, type: 'text' | 'text[]' | 'timestamptz' = 'text'): string {
    let ofType = this.bound.get(type);
    if (ofType === undefined) {
      ofType = new Map();
      this.bound.set(type, ofType);
    }
    let placeholder = ofType.get(value);
    if (placeholder === undefined) {
      placeholder = `${this.param(value)}::${type}`;
      ofType.set(value, placeholder);
    }
    return placeholder;
  }
}

const ESCAPED = /[\\"]/g;
/** Characters JSON would escape in a way array_in does not read back (control characters, surrogates). */
const NEEDS_CARE = /[\u0000-\u001f\ud800-\udfff]/;

/**
 * A PostgreSQL array literal of text values, e.g. {"RRK","RJE",NULL}, for binding as `$n::text[]`
 * (array_in, PostgreSQL docs 8.15.6: quoted elements, a backslash before quote and backslash,
 * NULL in any case). JSON of the same strings is exactly that but for the brackets when no value
 * holds a control character or a surrogate, so the common case is one JSON.stringify.
 */
export function textArrayLiteral(values: readonly (string | null)[]): string {
  if (!values.some((v) => v !== null && NEEDS_CARE.test(v))) return `{${JSON.stringify(values).slice(1, -1)}}`;
  let out = '{';
  for (let k = 0; k < values.length; k++) {
    const v = values[k];
    if (k > 0) out += ',';
    out += v === null || v === undefined ? 'NULL' : `"${v.replace(ESCAPED, '\\$&')}"`;
  }
  return `${out}}`;
}
