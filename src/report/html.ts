/**
 * The report: one self-contained HTML page (inline CSS and SVG, nothing
 * fetched at view time). At the top the memlock answer as sentences, the
 * captured design's first; then per design a chart of locked_vm with the
 * limit in force and the limit needed drawn across it; the answers as a
 * table; the divergences; the findings grouped by cause. A pure function of
 * the stored data. Timelines arrive cut into one column per pixel
 * (downsample.ts), so the page stays small for a trace of any length.
 */
import { CAPTURED_DESIGN, decidingDesigns, orderDesigns } from '../replay/designs.js';
import type { AccountingRow } from '../store/queries.js';
import { downsampleSteps, seqRangeOf, type StepColumns } from './downsample.js';
import type { FindingGroup } from './findings.js';
import { answerOfRow, memlockSentence, memlockShort } from './memlock.js';
import { formatByteCount, formatKiB, formatSize, thousands } from './size.js';
import { byteAxis, byteTickLabel, seqAxis } from './ticks.js';

/** The chart's geometry (px): the plot is `CHART_COLUMNS` wide, one timeline column per pixel. */
export const CHART = { width: 900, height: 300, left: 110, right: 20, top: 30, bottom: 46 } as const;
export const CHART_COLUMNS = CHART.width - CHART.left - CHART.right;

/** Groups shown in the findings table; the rest are counted. */
export const MAX_FINDING_GROUPS = 300;
export const MAX_DIVERGENCES = 100;

export interface ReportData {
  traceId: string;
  pageSize: number;
  generatedAt: string;
  /** One row per design and process (accounting()); timelines may be empty when `series` is given. */
  accounting: AccountingRow[];
  /** Timelines already cut into CHART_COLUMNS columns over `seqRange`, by seriesKey(); else cut here from the rows' timelines. */
  series?: ReadonlyMap<string, StepColumns>;
  /** Seq on the x axis: the trace's first and last event; else the rows' timelines. */
  seqRange?: [number, number] | null;
  /** Events in the trace, when known. */
  events?: number;
  /** The guest's memory in bytes (trace header or --guest-memory): the sentences then weigh libvirt's default. */
  guestMemory?: bigint | null;
  /** Findings grouped by cause (findingGroups(), or groupFindings() on rows), DESIGN_DIVERGENCE left out. */
  findingGroups: FindingGroup[];
  /** The DESIGN_DIVERGENCE findings. */
  divergences: { seq: number; backend: string; message: string }[];
}

export const seriesKey = (backend: string, pid: number): string => `${backend}/${pid}`;

/** Process lines; the limit and the need have their own colours, not used for processes. */
const COLORS = ['#1f77b4', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
export const LIMIT_COLOR = '#d62728';
export const NEEDED_COLOR = '#2ca02c';
const NEEDED_TEXT = '#156615';
/** A white edge round a label, so it reads where it crosses a line. */
const HALO = 'paint-order="stroke" stroke="#fff" stroke-width="3" stroke-linejoin="round"';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (n: number) => String(Math.round(n * 10) / 10);
const plural = (n: number, one: string, many = one + 's') => `${thousands(n)} ${n === 1 ? one : many}`;

function designLabel(backend: string, headline: string): string {
  return backend === headline ? (backend === CAPTURED_DESIGN ? `${backend} (the captured design)` : backend) : `${backend} (comparison)`;
}

/** `d` of a step path through the columns: per column a vertical stroke over its range, a horizontal one between. */
export function stepPath(s: StepColumns, xOfColumn: (c: number) => number, yOf: (v: number) => number, xEnd: number): string {
  if (s.startColumn < 0) return '';
  let cur = s.firstValue;
  const parts: string[] = [`M${fmt(xOfColumn(s.startColumn))},${fmt(yOf(cur))}`];
  for (let c = s.startColumn; c < s.columns; c++) {
    const lo = s.min[c]!;
    const hi = s.max[c]!;
    const last = s.last[c]!;
    if (lo === cur && hi === cur && last === cur) continue;
    let p = `H${fmt(xOfColumn(c))}`;
    // Down to the low first when the column ends higher, up to the high first when it ends lower.
    const visit = last >= cur ? [lo, hi, last] : [hi, lo, last];
    for (const v of visit) {
      if (v !== cur) {
        p += `V${fmt(yOf(v))}`;
        cur = v;
      }
    }
    parts.push(p);
  }
  parts.push(`H${fmt(xEnd)}`);
  return parts.join('');
}

interface Level {
  bytes: number;
  pids: number[];
}

/** Rows' values grouped by value, so processes with the same limit or need share one line. */
function levels(rows: AccountingRow[], of: (r: AccountingRow) => number | null): Level[] {
  const m = new Map<number, number[]>();
  for (const r of rows) {
    const v = of(r);
    if (v === null) continue;
    const pids = m.get(v) ?? [];
    pids.push(r.pid);
    m.set(v, pids);
  }
  return [...m].map(([bytes, pids]) => ({ bytes, pids })).sort((a, b) => a.bytes - b.bytes);
}

/** One design's chart: locked_vm of each process, the limit in force and the limit needed. */
function chart(data: ReportData, backend: string, headline: string, rows: AccountingRow[], series: ReadonlyMap<string, StepColumns>, range: [number, number]): string {
  const { width: W, height: H, left: L, right: R, top: T, bottom: B } = CHART;
  const plotW = W - L - R;
  const plotH = H - T - B;
  const [x0, x1] = range;
  const span = x1 - x0 + 1;
  const drawn = rows.map((r) => ({ row: r, s: series.get(seriesKey(r.backend, r.pid)) })).filter((d): d is { row: AccountingRow; s: StepColumns } => !!d.s && d.s.points > 0);
  const multi = rows.length > 1;

  // The scale holds every process's peak and every need; a limit far above them is named at the top instead.
  let base = data.pageSize;
  for (const d of drawn) base = Math.max(base, d.s.peak * data.pageSize);
  for (const r of rows) base = Math.max(base, r.memlock_required);
  const limits = levels(rows, (r) => r.memlock_limit);
  const onScale = (l: Level) => l.bytes <= base * 3;
  let yMax = base;
  for (const l of limits) if (onScale(l)) yMax = Math.max(yMax, l.bytes);
  const ya = byteAxis(yMax);
  const y = (bytes: number) => T + plotH - (bytes / ya.top) * plotH;
  const xSeq = (seq: number) => L + ((seq - x0) / span) * plotW;
  const xa = seqAxis(x0, x1);

  const out: string[] = [];
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  for (const t of ya.ticks) {
    out.push(`<line class="grid" x1="${L}" x2="${L + plotW}" y1="${fmt(y(t))}" y2="${fmt(y(t))}" stroke="#e4e4e4"/>`);
    out.push(`<text class="ytick" x="${L - 6}" y="${fmt(y(t) + 4)}" text-anchor="end">${esc(byteTickLabel(t))}</text>`);
  }
  for (const t of xa.ticks) {
    const xt = fmt(xSeq(t));
    out.push(`<line class="xgrid" x1="${xt}" x2="${xt}" y1="${T}" y2="${T + plotH}" stroke="#f0f0f0"/>`);
    out.push(`<line x1="${xt}" x2="${xt}" y1="${T + plotH}" y2="${T + plotH + 4}" stroke="#333"/>`);
    // A label that would run past the edge of the picture ends at it instead.
    const label = thousands(t);
    const half = label.length * 3.5;
    const anchor = xSeq(t) + half > W - 2 ? `x="${W - 2}" text-anchor="end"` : `x="${xt}" text-anchor="middle"`;
    out.push(`<text class="xtick" ${anchor} y="${T + plotH + 17}">${esc(label)}</text>`);
  }
  out.push(`<line x1="${L}" x2="${L + plotW}" y1="${T + plotH}" y2="${T + plotH}" stroke="#333"/>`);
  out.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${T + plotH}" stroke="#333"/>`);
  out.push(`<text class="axis-name" x="${L + plotW}" y="${H - 6}" text-anchor="end">seq</text>`);
  out.push(`<text class="axis-name" x="${L - 6}" y="${T - 12}" text-anchor="end">locked_vm</text>`);

  drawn.forEach((d, i) => {
    const color = COLORS[i % COLORS.length]!;
    const path = stepPath(
      d.s,
      (c) => L + (c * plotW) / d.s.columns,
      (v) => y(v * data.pageSize),
      L + plotW,
    );
    out.push(
      `<path class="series" data-backend="${esc(d.row.backend)}" data-pid="${d.row.pid}" data-points="${d.s.points}" d="${path}" fill="none" stroke="${color}" stroke-width="2.5" stroke-linejoin="round"><title>${esc(`${d.row.backend} pid ${d.row.pid}: locked_vm, peak ${formatSize(BigInt(d.row.peak_locked_vm) * BigInt(data.pageSize))}`)}</title></path>`,
    );
  });

  const pidsText = (l: Level) => (multi ? ` (pid ${l.pids.join(', ')})` : '');
  const needs = levels(rows, (r) => r.memlock_required);
  // Labels sit by their line, above it or else below it, where they cross no other line and no label on their side
  // (limits are labelled at the left end, needs at the right).
  const lineYs = [...limits.filter(onScale).map((l) => y(l.bytes)), ...needs.map((l) => y(l.bytes))];
  const placed: { side: string; base: number }[] = [];
  const place = (ly: number, side: 'left' | 'right'): number => {
    const fits = (base: number) =>
      base - 10 >= 2 &&
      base <= T + plotH - 2 &&
      lineYs.every((o) => o === ly || o < base - 11 || o > base + 3) &&
      placed.every((p) => p.side !== side || Math.abs(p.base - base) >= 13);
    const base = [ly - 5, ly + 14, ly - 18, ly + 27].find(fits) ?? ly - 5;
    placed.push({ side, base });
    return base;
  };
  for (const l of limits) {
    const label = `RLIMIT_MEMLOCK in force${pidsText(l)}: ${formatKiB(BigInt(l.bytes))}`;
    if (onScale(l)) {
      const yl = fmt(y(l.bytes));
      out.push(
        `<line class="limit" data-bytes="${l.bytes}" data-pids="${l.pids.join(',')}" x1="${L}" x2="${L + plotW}" y1="${yl}" y2="${yl}" stroke="${LIMIT_COLOR}" stroke-width="2" stroke-dasharray="7 5"><title>${esc(label)}</title></line>`,
      );
      out.push(`<text ${HALO} class="limit-label" x="${L + 6}" y="${fmt(place(y(l.bytes), 'left'))}" fill="${LIMIT_COLOR}">${esc(label)}</text>`);
    } else {
      out.push(`<text ${HALO} class="limit-label offscale" data-bytes="${l.bytes}" x="${L + 6}" y="${T - 12}" fill="${LIMIT_COLOR}">${esc(`${label}, above the scale`)}</text>`);
      placed.push({ side: 'left', base: T - 12 });
    }
  }
  for (const l of needs) {
    const label = `needed${pidsText(l)}: ${formatKiB(BigInt(l.bytes))}`;
    const yl = fmt(y(l.bytes));
    out.push(
      `<line class="needed" data-bytes="${l.bytes}" data-pids="${l.pids.join(',')}" x1="${L}" x2="${L + plotW}" y1="${yl}" y2="${yl}" stroke="${NEEDED_COLOR}" stroke-width="2" stroke-dasharray="10 4"><title>${esc(`RLIMIT_MEMLOCK ${label} (${formatByteCount(BigInt(l.bytes))})`)}</title></line>`,
    );
    out.push(`<text ${HALO} class="needed-label" x="${L + plotW - 6}" y="${fmt(place(y(l.bytes), 'right'))}" text-anchor="end" fill="${NEEDED_TEXT}">${esc(label)}</text>`);
  }
  // A refusal is marked where it happened, its label at a height no line or label takes.
  const taken = [...lineYs, ...placed.map((p) => p.base - 4)];
  for (const r of rows) {
    if (!r.first_refusal) continue;
    const xr = xSeq(r.first_refusal.seq);
    const right = xr > L + plotW * 0.6;
    const label = `seq ${thousands(r.first_refusal.seq)}: ${r.first_refusal.event} refused${multi ? ` (pid ${r.pid})` : ''}`;
    out.push(
      `<line class="refusal" data-seq="${r.first_refusal.seq}" data-pid="${r.pid}" x1="${fmt(xr)}" x2="${fmt(xr)}" y1="${T}" y2="${T + plotH}" stroke="${LIMIT_COLOR}" stroke-width="1" stroke-dasharray="2 3"/>`,
    );
    const candidates = [T + 14, T + plotH * 0.5, T + plotH * 0.25, T + plotH * 0.75, T + plotH - 8];
    const yr = candidates.find((c) => taken.every((t) => Math.abs(t - (c - 4)) > 12)) ?? candidates[0]!;
    taken.push(yr - 4);
    out.push(`<text ${HALO} class="refusal-label" x="${fmt(right ? xr - 5 : xr + 5)}" y="${fmt(yr)}" text-anchor="${right ? 'end' : 'start'}" fill="${LIMIT_COLOR}">${esc(label)}</text>`);
  }

  const keys = drawn.map(
    (d, i) => `<span class="key"><span class="swatch" style="background:${COLORS[i % COLORS.length]}"></span>pid ${d.row.pid}${d.s.points > CHART_COLUMNS ? ` (${thousands(d.s.points)} changes, min and max per pixel)` : ''}</span>`,
  );
  if (limits.length) keys.push(`<span class="key"><span class="dash" style="border-color:${LIMIT_COLOR}"></span>RLIMIT_MEMLOCK in force</span>`);
  const unlimited = rows.filter((r) => r.memlock_limit === null);
  if (unlimited.length) {
    keys.push(`<span class="key">${multi ? `pid ${unlimited.map((r) => r.pid).join(', ')}: ` : ''}no limit in force${unlimited.every((r) => r.cap_ipc_lock) ? ' (CAP_IPC_LOCK)' : ''}</span>`);
  }
  keys.push(`<span class="key"><span class="dash" style="border-color:${NEEDED_COLOR}"></span>RLIMIT_MEMLOCK needed (the peak with no limit)</span>`);
  const body = drawn.length || rows.length ? out.join('\n') : out.join('\n') + `\n<text x="${L + 10}" y="${T + 20}">no process locked memory under this design</text>`;
  return `<figure class="timeline" id="timeline-${esc(backend)}" data-backend="${esc(backend)}">
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(`locked memory of ${backend} over the trace`)}" font-family="system-ui, sans-serif" font-size="12" fill="#333">
${body}
</svg>
<figcaption><b>${esc(designLabel(backend, headline))}</b>: locked_vm over the trace. ${keys.join(' ')}</figcaption>
</figure>`;
}

function answerBlock(data: ReportData, designs: string[], headline: string | undefined): string {
  const guest = data.guestMemory ?? null;
  if (headline === undefined) return `<section id="answer"><p class="sentence">No process locked memory in this trace: it needs no RLIMIT_MEMLOCK.</p></section>`;
  const sentence = (r: AccountingRow) => memlockSentence(answerOfRow(r), guest);
  const prefix = headline === CAPTURED_DESIGN ? '' : `${headline}: `;
  const main = data.accounting
    .filter((r) => r.backend === headline)
    .map((r) => `<p class="sentence" data-backend="${esc(r.backend)}" data-pid="${r.pid}">${esc(prefix + sentence(r))}.</p>`);
  const comparisons = designs
    .filter((b) => b !== headline)
    .flatMap((b) => data.accounting.filter((r) => r.backend === b))
    .map((r) => `<li class="comparison" data-backend="${esc(r.backend)}" data-pid="${r.pid}">${esc(`${r.backend} (comparison): ${sentence(r)}`)}.</li>`);
  const legacy = data.accounting.some((r) => r.limit_refusals === null)
    ? `<p class="note">Some answers were stored before pinledger replayed traces without the limit (schema 3): they are the peak under the limit in force, too low when the limit refused an operation. Ingest the trace again for the full answer.</p>`
    : '';
  const basis =
    headline === CAPTURED_DESIGN
      ? `<p class="basis">Replayed through ${esc(CAPTURED_DESIGN)}, the design of the kernel the trace was captured on. <code>ulimit -l</code> takes the limit in KiB, <code>prlimit --memlock</code> in bytes.</p>`
      : '';
  // Red when the limit in force was short for a process of the headline design: the VM failed.
  const failed = data.accounting.some((r) => r.backend === headline && r.memlock_short > 0);
  return `<section id="answer" class="${failed ? 'short' : 'enough'}">
${main.join('\n')}
${basis}${legacy}${comparisons.length ? `\n<ul class="comparisons">\n${comparisons.join('\n')}\n</ul>` : ''}
</section>`;
}

function memlockTable(data: ReportData): string {
  const rows = data.accounting.map((r) => {
    const a = answerOfRow(r);
    const short = memlockShort(a);
    const limit = a.limit === null ? (a.capIpcLock ? 'none (CAP_IPC_LOCK)' : 'unlimited') : formatKiB(a.limit);
    const refused = r.limit_refusals === null ? 'unknown' : r.limit_refusals === 0 ? 'none' : `${thousands(r.limit_refusals)}${r.first_refusal ? `, the first ${esc(r.first_refusal.event)} at seq ${thousands(r.first_refusal.seq)}` : ''}`;
    return `<tr data-backend="${esc(r.backend)}" data-pid="${r.pid}"><td>${esc(r.backend)}</td><td>${r.pid}</td><td class="answer" title="${esc(formatByteCount(a.required))}" data-bytes="${a.required}">${esc(formatKiB(a.required))}</td><td class="num">${thousands(r.peak_by_cause.direct)} / ${thousands(r.peak_by_cause.pins)} / ${thousands(r.peak_by_cause.shared)}${r.peak_by_cause.mlock === undefined ? '' : `, mlock ${thousands(r.peak_by_cause.mlock)}`}</td><td class="kib">${esc(limit)}</td><td class="kib">${short === 0n ? '' : esc(formatKiB(short))}</td><td>${refused}</td><td class="num">${thousands(r.peak_locked_vm)}</td><td class="num">${r.peak_seq === null ? '' : thousands(r.peak_seq)}</td><td class="num">${thousands(r.final_locked_vm)}</td></tr>`;
  });
  return `<table id="memlock"><tr><th>design</th><th>pid</th><th>needed</th><th>needed pages: direct / pins / charged again (, mlock)</th><th>limit in force</th><th>short by</th><th>refused by the limit</th><th>peak pages</th><th>peak at seq</th><th>final pages</th></tr>
${rows.join('\n') || '<tr><td colspan="10">no process locked memory</td></tr>'}
</table>
<p class="meta">Needed: the smallest RLIMIT_MEMLOCK under which the whole trace runs, the peak of a replay with no limit, and what its pages were charged for (direct: IOMMU mappings; pins: vendor-driver pins; charged again: frames the process already had charged, which a de-duplicating design would not charge; mlock, when the process locked memory: pages locked by mlock, mlockall or MAP_LOCKED, which count in locked_vm with the DMA charge). Peak and final pages: locked_vm as the trace ran, under the limit in force.</p>`;
}

function divergenceTable(data: ReportData): string {
  const seen = new Set<string>();
  const rows: string[] = [];
  let more = 0;
  for (const f of [...data.divergences].sort((a, b) => a.seq - b.seq)) {
    const k = `${f.seq}/${f.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    if (rows.length >= MAX_DIVERGENCES) {
      more++;
      continue;
    }
    rows.push(`<tr><td class="num">${thousands(f.seq)}</td><td>${esc(f.message)}</td></tr>`);
  }
  if (more) rows.push(`<tr><td colspan="2">and ${plural(more, 'more divergence')}</td></tr>`);
  return `<table id="divergences"><tr><th>seq</th><th>where they first disagree</th></tr>
${rows.join('\n') || '<tr><td colspan="2">none</td></tr>'}
</table>`;
}

function findingsTable(data: ReportData): string {
  const groups = data.findingGroups;
  const shown = groups.slice(0, MAX_FINDING_GROUPS);
  const rows = shown.map(
    (g) =>
      `<tr class="${esc(g.severity)}" data-code="${esc(g.code)}" data-count="${g.count}"><td>${esc(g.backend)}</td><td>${esc(g.severity)}</td><td>${esc(g.code)}</td><td class="num">${thousands(g.count)}</td><td class="num">${thousands(g.first_seq)}</td><td class="num">${g.count > 1 ? thousands(g.last_seq) : ''}</td><td>${esc(g.message)}${g.count > 1 ? ` <span class="more">(the first of ${thousands(g.count)})</span>` : ''}</td></tr>`,
  );
  if (groups.length > shown.length) {
    let rest = 0;
    for (const g of groups.slice(MAX_FINDING_GROUPS)) rest += g.count;
    rows.push(`<tr><td colspan="7">and ${plural(groups.length - shown.length, 'more group')} (${plural(rest, 'finding')}): <code>pinledger findings --trace ${esc(data.traceId)}</code></td></tr>`);
  }
  let total = 0;
  for (const g of groups) total += g.count;
  return `<p>${plural(total, 'finding')} in ${plural(groups.length, 'group')}: one row per design, code and cause, with the first and last seq.</p>
<table id="findings"><tr><th>design</th><th>severity</th><th>code</th><th>count</th><th>first seq</th><th>last seq</th><th>message (of the first)</th></tr>
${rows.join('\n') || '<tr><td colspan="7">none</td></tr>'}
</table>`;
}

export function renderReport(data: ReportData): string {
  const designs = orderDesigns([...new Set(data.accounting.map((a) => a.backend))]);
  // The first deciding design gives the headline (upstream whenever it was replayed).
  const headline = decidingDesigns(designs)[0];
  const range: [number, number] = data.seqRange ?? seqRangeOf(data.accounting.map((a) => a.timeline)) ?? [0, 1];
  let series = data.series;
  if (!series) {
    const m = new Map<string, StepColumns>();
    for (const r of data.accounting) if (r.timeline.length) m.set(seriesKey(r.backend, r.pid), downsampleSteps(r.timeline, range[0], range[1], CHART_COLUMNS));
    series = m;
  }
  const charts = designs.map((b) =>
    chart(
      data,
      b,
      headline!,
      data.accounting.filter((r) => r.backend === b),
      series,
      range,
    ),
  );
  const designList = designs.map((b) => designLabel(b, headline!)).join(', ');
  const events = data.events !== undefined ? `${plural(data.events, 'event')}, ` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pinledger report: ${esc(data.traceId)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 20px; margin: 0 0 12px; } h2 { font-size: 16px; margin-top: 28px; }
#answer { border: 2px solid #2ca02c; background: #f1f9f1; border-radius: 6px; padding: 10px 16px; margin: 0 0 16px; }
#answer.short { border-color: #d62728; background: #fdf0f0; }
#answer .sentence { font-size: 17px; font-weight: 600; margin: 6px 0; }
#answer .basis, #answer .note { color: #555; margin: 6px 0; } #answer .note { color: #8a5a00; }
#answer .comparisons { margin: 8px 0 4px; padding-left: 20px; color: #444; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } td.answer { font-weight: 600; white-space: nowrap; } td.kib { white-space: nowrap; }
th { background: #f3f3f3; } tr.error td { background: #fde8e8; } tr.warning td { background: #fff6dd; }
.more { color: #666; }
.key { margin-right: 12px; white-space: nowrap; } .swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: middle; }
.dash { display: inline-block; width: 22px; margin-right: 4px; vertical-align: middle; border-top: 2px dashed; }
figure { margin: 0 0 18px; } figcaption { color: #555; margin-top: 4px; max-width: 900px; }
.meta { color: #555; }
</style>
</head>
<body>
<h1>pinledger report: ${esc(data.traceId)}</h1>
${answerBlock(data, designs, headline)}
<p class="meta">${esc(events)}seq ${thousands(range[0])} to ${thousands(range[1])}, pages of ${thousands(data.pageSize)} bytes${data.guestMemory ? `, guest memory ${esc(formatSize(data.guestMemory))}` : ''}; designs: ${esc(designList || 'none')}. Generated ${esc(data.generatedAt)}.</p>
<h2>Locked memory</h2>
${charts.join('\n')}
<h2>The memlock answer</h2>
${memlockTable(data)}
<h2>Divergences between designs</h2>
${divergenceTable(data)}
<h2>Findings</h2>
${findingsTable(data)}
</body>
</html>
`;
}
