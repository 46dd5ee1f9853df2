/**
 * The report: one self-contained HTML page (inline CSS and SVG, nothing
 * fetched at view time) with the locked-memory timeline of every design and
 * process as a chart, the memlock answer, the findings and the divergences.
 * A pure function of the stored data.
 */
import type { AccountingRow, FindingRow } from '../store/queries.js';

export interface ReportData {
  traceId: string;
  pageSize: number;
  accounting: AccountingRow[];
  findings: FindingRow[];
  generatedAt: string;
}

const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function bytesLabel(bytes: number): string {
  const units: [number, string][] = [
    [2 ** 40, 'TiB'],
    [2 ** 30, 'GiB'],
    [2 ** 20, 'MiB'],
    [2 ** 10, 'KiB'],
  ];
  for (const [u, n] of units) if (bytes >= u) return `${(bytes / u).toFixed(bytes % u === 0 ? 0 : 2)} ${n}`;
  return `${bytes} B`;
}

/** A step chart of one design's processes, seq on x, locked memory on y. */
function chart(data: ReportData, backend: string): string {
  const W = 900;
  const H = 260;
  const L = 110;
  const R = 20;
  const T = 20;
  const B = 40;
  const series = data.accounting.filter((a) => a.backend === backend && a.timeline.length > 0);
  const seqs = series.flatMap((s) => s.timeline.map((p) => p[0]));
  const minX = Math.min(...seqs, 0);
  const maxX = Math.max(...seqs, minX + 1);
  const maxY = Math.max(...series.flatMap((s) => s.timeline.map((p) => p[1])), 1);
  const x = (v: number) => L + ((v - minX) / (maxX - minX)) * (W - L - R);
  const y = (v: number) => H - B - (v / maxY) * (H - T - B);
  const paths = series.map((s, i) => {
    let d = '';
    let prev: number | undefined;
    for (const [seq, v] of s.timeline) {
      d += d === '' ? `M${x(seq).toFixed(1)},${y(v).toFixed(1)}` : ` H${x(seq).toFixed(1)} V${y(v).toFixed(1)}`;
      prev = v;
    }
    d += ` H${x(maxX).toFixed(1)}`;
    void prev;
    const color = COLORS[i % COLORS.length]!;
    return `<path class="series" data-backend="${esc(s.backend)}" data-pid="${s.pid}" d="${d}" fill="none" stroke="${color}" stroke-width="2.5"/>`;
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = maxY * f;
    return `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${esc(bytesLabel(v * data.pageSize))}</text>`;
  });
  const legend = series
    .map((s, i) => `<span class="key"><span class="swatch" style="background:${COLORS[i % COLORS.length]}"></span>${esc(s.backend)} pid ${s.pid}</span>`)
    .join(' ');
  return `<figure class="timeline" id="timeline-${esc(backend)}">
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="locked memory over the trace">
<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>
${ticks.join('\n')}
<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/>
<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/>
<text x="${L}" y="${H - 12}">seq ${minX}</text><text x="${W - R}" y="${H - 12}" text-anchor="end">seq ${maxX}</text>
${paths.join('\n')}
</svg>
<figcaption><b>${esc(backend)}</b>: locked_vm over the trace. ${legend}</figcaption>
</figure>`;
}

export function renderReport(data: ReportData): string {
  const memlock = data.accounting
    .map(
      (a) =>
        `<tr><td>${esc(a.backend)}</td><td>${a.pid}</td><td>${a.peak_locked_vm}</td><td>${a.final_locked_vm}</td><td class="answer">${a.memlock_required}</td><td>${esc(bytesLabel(a.memlock_required))}</td><td>${a.peak_by_cause.direct} / ${a.peak_by_cause.pins} / ${a.peak_by_cause.shared}</td><td>${a.peak_seq ?? ''}</td></tr>`,
    )
    .join('\n');
  const findings = data.findings
    .filter((f) => f.code !== 'DESIGN_DIVERGENCE')
    .map((f) => `<tr class="${esc(f.severity)}"><td>${f.seq}</td><td>${esc(f.backend)}</td><td>${esc(f.severity)}</td><td>${esc(f.code)}</td><td>${esc(f.message)}</td></tr>`)
    .join('\n');
  const seen = new Set<string>();
  const divergences = data.findings
    .filter((f) => f.code === 'DESIGN_DIVERGENCE')
    .filter((f) => {
      const k = `${f.seq}/${f.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .map((f) => `<tr><td>${f.seq}</td><td>${esc(f.message)}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pinledger report: ${esc(data.traceId)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f3f3f3; } tr.error td { background: #fde8e8; } tr.warning td { background: #fff6dd; }
.key { margin-right: 12px; white-space: nowrap; } .swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: middle; }
figure { margin: 0; } figcaption { color: #555; margin-top: 6px; }
</style>
</head>
<body>
<h1>pinledger report: ${esc(data.traceId)}</h1>
<p>Generated ${esc(data.generatedAt)}. Sizes in pages of ${data.pageSize} bytes unless marked.</p>
<h2>Locked memory</h2>
${[...new Set(data.accounting.map((a) => a.backend))].map((b) => chart(data, b)).join('\n')}
<h2>The memlock answer</h2>
<p>The smallest RLIMIT_MEMLOCK under which every operation that succeeded would still have succeeded, per design and process.</p>
<table id="memlock"><tr><th>design</th><th>pid</th><th>peak pages</th><th>final pages</th><th>memlock bytes</th><th></th><th>direct / pins / charged again</th><th>peak at seq</th></tr>
${memlock}
</table>
<h2>Divergences between designs</h2>
<table id="divergences"><tr><th>seq</th><th>where they first disagree</th></tr>
${divergences || '<tr><td colspan="2">none</td></tr>'}
</table>
<h2>Findings</h2>
<table id="findings"><tr><th>seq</th><th>design</th><th>severity</th><th>code</th><th>message</th></tr>
${findings || '<tr><td colspan="5">none</td></tr>'}
</table>
</body>
</html>
`;
}
