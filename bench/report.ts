import { fmt } from './common';
import type { LoadResult } from './load';

/** One line of the final table: a measured figure against its target (from the issue), if any. */
export interface SummaryRow {
  figure: string;
  measured?: number;
  target?: number;
  kind?: 'min' | 'max';
}

export function row(figure: string, measured: number | undefined, target: number | undefined, kind: 'min' | 'max' | undefined): SummaryRow {
  return { figure, measured, target, kind };
}

function met(r: SummaryRow): string {
  if (r.measured === undefined || r.target === undefined || r.kind === undefined) return '-';
  return (r.kind === 'min' ? r.measured >= r.target : r.measured <= r.target) ? 'yes' : 'NO';
}

export function printLoad(r: LoadResult): void {
  console.log(
    `\nsearch load, ${r.variant}: ${fmt(r.requests)} requests, ${fmt(r.perSecond)} req/s; latency p50 ${fmt(r.p50, 1)} ms, p95 ${fmt(r.p95, 1)} ms, p99 ${fmt(r.p99, 1)} ms, max ${fmt(r.max, 1)} ms; ` +
      `${fmt(r.meanBytes)} bytes per response; ${r.errors} errors, ${r.non2xx} non-2xx; rounds ${r.rounds.map((x) => fmt(x)).join(', ')} req/s`,
  );
}

export function printSummary(rows: SummaryRow[]): void {
  const table = rows.map((r) => [
    r.figure,
    r.measured === undefined ? 'n/a' : fmt(r.measured, r.measured < 100 ? 1 : 0),
    r.target === undefined ? '-' : `${r.kind === 'min' ? '>=' : '<='} ${fmt(r.target)}`,
    met(r),
  ]);
  const head = ['figure', 'measured', 'target', 'met?'];
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => (t[i] as string).length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  console.log(`\nsummary\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const t of table) console.log(line(t));
}

/** A figure returned by another engineer's bench module, whatever its shape (number or object). */
export function describeFigure(value: unknown): string {
  if (typeof value === 'number') return fmt(value, 1);
  if (value === undefined || value === null) return 'no figure returned';
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v, Number.isInteger(v) ? 0 : 1) : String(v)}`)
      .join(', ');
  }
  return String(value);
}
