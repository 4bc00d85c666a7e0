import type { DayCount } from '../audit/audit-search';
import type { Html } from './html';
import { html } from './html';

/** NHS identity palette (service manual colours); the last one is for "other organisations". */
const COLOURS = ['#005eb8', '#330072', '#ffb81c', '#007f3b', '#ae2573', '#00a499', '#768692'];
const MAX_SERIES = 6;

export interface ChartRange {
  from: Date;
  days: number;
}

function dayKeys(range: ChartRange): string[] {
  return Array.from({ length: range.days }, (_, i) => new Date(range.from.getTime() + i * 86_400_000).toISOString().slice(0, 10));
}

/**
 * Accesses per day per organisation as a stacked bar chart in inline SVG: server-rendered,
 * readable without JavaScript; each segment carries a <title> so hovering names it, and the
 * legend and a caption give the same figures in text.
 */
export function accessChart(counts: DayCount[], range: ChartRange): Html {
  const totals = new Map<string, number>();
  for (const c of counts) totals.set(c.ods, (totals.get(c.ods) ?? 0) + c.n);
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const named = ranked.slice(0, MAX_SERIES).map(([ods]) => ods);
  const series = ranked.length > MAX_SERIES ? [...named, 'Other'] : named;
  const colour = (ods: string): string => COLOURS[ods === 'Other' ? COLOURS.length - 1 : named.indexOf(ods)] as string;
  const byDay = new Map<string, Map<string, number>>();
  for (const c of counts) {
    const key = named.includes(c.ods) ? c.ods : 'Other';
    const day = byDay.get(c.day) ?? new Map<string, number>();
    day.set(key, (day.get(key) ?? 0) + c.n);
    byDay.set(c.day, day);
  }
  const days = dayKeys(range);
  const max = Math.max(1, ...days.map((d) => [...(byDay.get(d)?.values() ?? [])].reduce((a, b) => a + b, 0)));
  const W = 760;
  const H = 220;
  const left = 44;
  const bottom = 28;
  const plotH = H - bottom - 10;
  const slot = (W - left - 10) / days.length;
  const barW = Math.max(2, slot * 0.7);
  const y = (v: number): number => 10 + plotH - (v / max) * plotH;
  const bars = days.map((day, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    let acc = 0;
    const segs = series.flatMap((ods) => {
      const n = byDay.get(day)?.get(ods) ?? 0;
      if (n === 0) return [];
      const top = y(acc + n);
      const h = y(acc) - top;
      acc += n;
      return [html`<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${barW.toFixed(1)}" height="${Math.max(h, 0.5).toFixed(1)}" fill="${colour(ods)}"><title>${day} ${ods}: ${n}</title></rect>`];
    });
    const label = i % Math.ceil(days.length / 8) === 0 ? html`<text x="${(x + barW / 2).toFixed(1)}" y="${H - 10}" text-anchor="middle" font-size="11" fill="#4c6272">${day.slice(5)}</text>` : '';
    return html`${segs}${label}`;
  });
  const total = counts.reduce((a, c) => a + c.n, 0);
  const caption = `${total} events from ${days[0]} to ${days[days.length - 1]} (UTC days), ${ranked.length} organisation${ranked.length === 1 ? '' : 's'}`;
  return html`<figure class="locus-chart">
<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${`Accesses per day per organisation: ${caption}`}" xmlns="http://www.w3.org/2000/svg">
<line x1="${left}" y1="${y(0)}" x2="${W - 10}" y2="${y(0)}" stroke="#aeb7bd"/>
<line x1="${left}" y1="10" x2="${left}" y2="${y(0)}" stroke="#aeb7bd"/>
<text x="${left - 6}" y="14" text-anchor="end" font-size="11" fill="#4c6272">${max}</text>
<text x="${left - 6}" y="${y(0)}" text-anchor="end" font-size="11" fill="#4c6272">0</text>
${bars}
</svg>
<figcaption class="nhsuk-body-s">${caption}</figcaption>
<ul class="locus-legend">${series.map((ods) => html`<li><svg width="14" height="14" aria-hidden="true"><rect width="14" height="14" fill="${colour(ods)}"/></svg> ${ods} (${ods === 'Other' ? ranked.slice(MAX_SERIES).reduce((a, [, n]) => a + n, 0) : totals.get(ods)})</li>`)}</ul>
</figure>`;
}
