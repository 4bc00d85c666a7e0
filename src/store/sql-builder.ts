import type { SqlValue } from './database';

/** Collects positional parameters while a statement is composed: values never enter the SQL text. */
export class SqlBuilder {
  readonly params: SqlValue[] = [];

  param(value: SqlValue): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }
}
