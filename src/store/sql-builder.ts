import type { SqlValue } from './database';

/** Collects positional parameters while a statement is composed: values never enter the SQL text. */
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

/** A PostgreSQL array literal of text values, e.g. {"RRK","RJE"}, for binding as `$n::text[]`. */
export function textArrayLiteral(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}
