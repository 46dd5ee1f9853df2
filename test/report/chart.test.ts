/**
 * The report's chart, the accounting sparkline and the terminal table on
 * timelines of a million points: no stack overflow, output bounded by the
 * column count, and every column's exact lowest and highest value kept.
 */
import { describe, expect, it } from 'vitest';
import { table } from '../../src/cli/format.js';
import { sparkline } from '../../src/cli/query-args.js';
import { StepDownsampler, columnOf, downsampleSteps, type StepColumns } from '../../src/report/downsample.js';
import { CHART, CHART_COLUMNS, renderReport, seriesKey, stepPath } from '../../src/report/html.js';
import type { AccountingRow } from '../../src/store/queries.js';

const N = 1_000_000;

/** A deterministic random walk of locked pages, one change per seq (seq 1..n), with one spike. */
function walk(n: number, seed = 7): [number, number][] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const out: [number, number][] = new Array(n);
  let v = 4096;
  for (let i = 0; i < n; i++) {
    v = Math.max(0, v + Math.floor(rnd() * 33) - 16);
    out[i] = [i + 1, i === 654321 ? 1_000_000 : v];
  }
  return out;
}

/** The columns computed the obvious way: every column's values, the one carried in included. */
function bruteColumns(points: [number, number][], x0: number, x1: number, columns: number) {
  const min: number[] = new Array(columns).fill(NaN);
  const max: number[] = new Array(columns).fill(NaN);
  const last: number[] = new Array(columns).fill(NaN);
  let i = 0;
  let carried: number | undefined;
  for (let c = 0; c < columns; c++) {
    const vals: number[] = carried === undefined ? [] : [carried];
    while (i < points.length && columnOf(points[i]![0], x0, x1, columns) === c) vals.push(points[i++]![1]);
    if (vals.length === 0) continue;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of vals) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    min[c] = lo;
    max[c] = hi;
    last[c] = vals[vals.length - 1]!;
    carried = last[c];
  }
  return { min, max, last };
}

const points = walk(N);

describe('downsampling a step series', () => {
  it('keeps the exact lowest, highest and last value of every column of a million points', () => {
    const d = downsampleSteps(points, 1, N, CHART_COLUMNS);
    const b = bruteColumns(points, 1, N, CHART_COLUMNS);
    expect(d.min.length).toBe(CHART_COLUMNS);
    expect([...d.min]).toEqual(b.min);
    expect([...d.max]).toEqual(b.max);
    expect([...d.last]).toEqual(b.last);
    expect(d.points).toBe(N);
    expect(d.peak).toBe(1_000_000);
    expect(d.startColumn).toBe(0);
    expect(d.firstValue).toBe(points[0]![1]);
  });

  it('holds the last value to the end and leaves the columns before the first point empty', () => {
    // seq 50 falls in column 4, 60 in column 5, 61 in column 6 (floor((seq - 1) * 10 / 100)).
    const d = downsampleSteps(
      [
        [50, 3],
        [60, 9],
        [61, 2],
      ],
      1,
      100,
      10,
    );
    expect([...d.max].map((v) => (Number.isNaN(v) ? null : v))).toEqual([null, null, null, null, 3, 9, 9, 2, 2, 2]);
    expect([...d.min].map((v) => (Number.isNaN(v) ? null : v))).toEqual([null, null, null, null, 3, 3, 2, 2, 2, 2]);
    expect(d.startColumn).toBe(4);
  });

  it('gives the same columns from per-column aggregates as from the points one by one', () => {
    for (const columns of [1, 7, CHART_COLUMNS, 5000]) {
      const one = downsampleSteps(points.slice(0, 200_000), 1, 250_000, columns);
      const agg = new StepDownsampler(1, 250_000, columns);
      let c = -1;
      let lo = 0;
      let hi = 0;
      let last = 0;
      let n = 0;
      for (const [seq, v] of points.slice(0, 200_000)) {
        const col = columnOf(seq, 1, 250_000, columns);
        if (col !== c && n) agg.addAggregate(c, lo, hi, last, n, points[0]![1]);
        if (col !== c) (c = col), (lo = v), (hi = v), (n = 0);
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
        last = v;
        n++;
      }
      agg.addAggregate(c, lo, hi, last, n, points[0]![1]);
      expect(agg.finish()).toEqual(one);
    }
  });
});

/** For each column's x in a step path: the lowest and highest y the path visits there (the y it arrives with included). */
function pathColumns(d: string): Map<number, { lo: number; hi: number }> {
  const m = new Map<number, { lo: number; hi: number }>();
  let y = NaN;
  let x = NaN;
  for (const [, cmd, a, b] of d.matchAll(/([MHV])(-?[\d.]+)(?:,(-?[\d.]+))?/g)) {
    if (cmd === 'M') {
      x = Number(a);
      y = Number(b);
    } else if (cmd === 'H') x = Number(a);
    else y = Number(a);
    const e = m.get(x) ?? { lo: y, hi: y };
    e.lo = Math.min(e.lo, y);
    e.hi = Math.max(e.hi, y);
    m.set(x, e);
  }
  return m;
}

describe('the chart of a million points', () => {
  const d = downsampleSteps(points, 1, N, CHART_COLUMNS);
  const yOf = (v: number) => 500 - v / 4000;
  const xOf = (c: number) => CHART.left + c;

  it('is a path of a bounded size whose stroke in every column spans exactly the column’s range', () => {
    const path = stepPath(d, xOf, yOf, CHART.left + CHART_COLUMNS);
    expect(path.length).toBeLessThan(CHART_COLUMNS * 40);
    const cols = pathColumns(path);
    const round = (v: number) => Math.round(v * 10) / 10;
    for (let c = 0; c < CHART_COLUMNS; c++) {
      const seen = cols.get(xOf(c));
      if (d.min[c] === d.max[c] && d.max[c] === (c === 0 ? d.firstValue : d.last[c - 1])) continue; // flat: drawn by the horizontal through it
      expect(seen, `column ${c}`).toBeDefined();
      // y grows downwards: the highest value is the smallest y.
      expect(seen!.lo, `column ${c} top`).toBe(round(yOf(d.max[c]!)));
      expect(seen!.hi, `column ${c} bottom`).toBe(round(yOf(d.min[c]!)));
    }
  });

  it('renders a report of a million-point timeline in well under a megabyte, the spike kept', () => {
    const row: AccountingRow = {
      backend: 'upstream',
      pid: 4242,
      peak_locked_vm: 1_000_000,
      final_locked_vm: points[N - 1]![1],
      memlock_required: 1_000_000 * 4096,
      memlock_limit: 64 * 2 ** 20,
      cap_ipc_lock: false,
      memlock_short: 1_000_000 * 4096 - 64 * 2 ** 20,
      limit_refusals: 3,
      first_refusal: { seq: 17, event: 'pin' },
      containers: 1,
      peak_by_cause: { direct: 0, pins: 1_000_000, shared: 0 },
      peak_seq: 654322,
      peak_event: null,
      timeline: points,
    };
    const html = renderReport({ traceId: 't/big', pageSize: 4096, generatedAt: 'now', accounting: [row], findingGroups: [], divergences: [] });
    expect(html.length).toBeLessThan(200_000);
    expect(html).toContain('class="limit" data-bytes="67108864"');
    expect(html).toContain(`class="needed" data-bytes="${1_000_000 * 4096}"`);
    const path = /<path class="series"[^>]* d="([^"]+)"/.exec(html)![1]!;
    // The spike (one point in a million) reaches the needed line.
    const ys = [...path.matchAll(/V(-?[\d.]+)/g)].map((m) => Number(m[1]));
    let top = Infinity;
    for (const v of ys) top = Math.min(top, v);
    const needed = Number(/class="needed"[^>]* y1="([\d.]+)"/.exec(html)![1]);
    expect(top).toBe(needed);
  });

  it('takes columns already cut (what the store gives) as they are', () => {
    const html = renderReport({
      traceId: 't/cut',
      pageSize: 4096,
      generatedAt: 'now',
      accounting: [{ ...rowOf(d), timeline: [] }],
      series: new Map<string, StepColumns>([[seriesKey('upstream', 1), d]]),
      seqRange: [1, N],
      findingGroups: [],
      divergences: [],
    });
    expect(html).toContain(`data-points="${N}"`);
  });
});

function rowOf(d: StepColumns): AccountingRow {
  return {
    backend: 'upstream',
    pid: 1,
    peak_locked_vm: d.peak,
    final_locked_vm: 0,
    memlock_required: d.peak * 4096,
    memlock_limit: null,
    cap_ipc_lock: false,
    memlock_short: 0,
    limit_refusals: 0,
    first_refusal: null,
    containers: 1,
    peak_by_cause: { direct: d.peak, pins: 0, shared: 0 },
    peak_seq: null,
    peak_event: null,
    timeline: [],
  };
}

describe('the accounting sparkline of a million points', () => {
  it('is one character per column, the highest value of each, without a stack overflow', () => {
    const line = sparkline(points, 60);
    expect([...line]).toHaveLength(60);
    const b = bruteColumns(points, 1, N, 60);
    const blocks = ' ▁▂▃▄▅▆▇█';
    expect([...line]).toEqual(b.max.map((v) => blocks[Math.round((v / 1_000_000) * 8)]));
    // The spike's column is full height, whatever the rest does.
    expect([...line][columnOf(654322, 1, N, 60)]).toBe('█');
  });

  it('keeps the short timelines as they were', () => {
    expect(sparkline([])).toBe('');
    expect(sparkline([[1, 0]])).toBe(' ');
    expect(sparkline([
      [1, 0],
      [6, 160],
      [8, 0],
    ])).toBe(' '.repeat(5) + '███'); // the last column starts at 160: the value carried in counts
  });
});

describe('the terminal table of a million rows', () => {
  it('aligns without a stack overflow', () => {
    const rows: string[][] = new Array(N);
    for (let i = 0; i < N; i++) rows[i] = [String(points[i]![0]), String(points[i]![1])];
    rows[N - 1] = ['x'.repeat(30), '1'];
    const out = table(rows, ['seq', 'pages']);
    const lines = out.split('\n');
    expect(lines).toHaveLength(N + 1);
    expect(lines[0]).toBe('seq' + ' '.repeat(29) + 'pages');
    expect(lines[1]).toBe('1' + ' '.repeat(31) + String(points[0]![1]));
  });
});
