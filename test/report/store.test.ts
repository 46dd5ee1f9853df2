/**
 * The store's side of the report: a timeline cut into columns by SQLite
 * is the one the pure downsampler cuts from all its points, and findings
 * grouped by SQL are the ones grouped in memory; on a store with 300,000
 * locked_vm changes and 120,000 findings.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { downsampleSteps, type StepColumns } from '../../src/report/downsample.js';
import { groupFindings } from '../../src/report/findings.js';
import { CHART_COLUMNS } from '../../src/report/html.js';
import { openReader, openStore, type Db } from '../../src/store/db.js';
import { accounting, findingGroups, listFindings, timelineColumns, traceSeqRange } from '../../src/store/queries.js';

const TRACE = 'test/churn';
const POINTS = 300_000;
let db: Db;

beforeAll(() => {
  const file = join(mkdtempSync(join(tmpdir(), 'pinledger-report-store-')), 'p.db');
  const w = openStore(file);
  const now = Date.now();
  w.prepare(`INSERT INTO traces (trace_id, backends, last_segment, last_seq, events, first_seen, updated_at) VALUES (?, ?, 0, ?, ?, ?, ?)`).run(
    TRACE,
    JSON.stringify(['rfc-v5', 'upstream']),
    POINTS + 10,
    POINTS + 10,
    now,
    now,
  );
  w.prepare(
    `INSERT INTO segments (trace_id, segment, file_name, content_hash, status, events, first_seq, last_seq, started_at, finished_at, duration_ms) VALUES (?, 0, 'a.jsonl', 'h', 'ingested', ?, 1, ?, ?, ?, 0)`,
  ).run(TRACE, POINTS + 10, POINTS + 10, now, now);
  const acct = w.prepare(
    `INSERT INTO accounting (trace_id, backend, pid, peak_locked_vm, final_locked_vm, memlock_required, peak_direct, peak_pins, peak_shared) VALUES (?, ?, ?, 0, 0, 0, 0, 0, 0)`,
  );
  const lv = w.prepare('INSERT INTO locked_vm (trace_id, backend, pid, seq, locked_vm) VALUES (?, ?, ?, ?, ?)');
  const fi = w.prepare(`INSERT INTO findings (trace_id, segment, backend, code, severity, seq, message, details) VALUES (?, 0, ?, ?, ?, ?, ?, ?)`);
  let s = 3;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  w.transaction(() => {
    for (const [backend, pid] of [
      ['upstream', 4242],
      ['rfc-v5', 4242],
      ['upstream', 7],
    ] as const) {
      acct.run(TRACE, backend, pid);
      let v = 1000;
      // pid 7 starts late and changes rarely.
      const n = pid === 7 ? 500 : POINTS;
      for (let i = 0; i < n; i++) {
        v = Math.max(0, v + Math.floor(rnd() * 21) - 10);
        lv.run(TRACE, backend, pid, pid === 7 ? 200_000 + i * 97 : 5 + i, v);
      }
    }
    for (let i = 0; i < 120_000; i++) {
      const kind = i % 3;
      if (kind === 0) fi.run(TRACE, 'rfc-v5', 'ACCT_DOUBLE_CHARGE', 'error', 10 + i, `Pin charged ${1 + (i % 40)} pages again`, JSON.stringify({ pages: 1 + (i % 40), cause: 'pin' }));
      else if (kind === 1) fi.run(TRACE, 'upstream', 'UNPIN_NOT_PINNED', 'error', 10 + i, `Device 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 unpins iova 0x${(i * 4096).toString(16)}, which it has not pinned`, '{}');
      else fi.run(TRACE, i % 2 ? 'upstream' : 'rfc-v5', 'DESIGN_DIVERGENCE', 'info', 10 + i, 'Designs differ', '{}');
    }
  })();
  w.close();
  db = openReader(file);
}, 60000);

/** Equal columns, compared in a loop (a deep equal of arrays of 600,000 doubles is slow); NaN equals NaN. */
function sameColumns(a: StepColumns, b: StepColumns, what: string): void {
  const { min, max, last, ...rest } = a;
  const { min: bmin, max: bmax, last: blast, ...brest } = b;
  expect(rest, what).toEqual(brest);
  for (const [x, y, name] of [
    [min, bmin, 'min'],
    [max, bmax, 'max'],
    [last, blast, 'last'],
  ] as const) {
    expect(x.length, `${what} ${name}`).toBe(y.length);
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) expect(x[i], `${what} ${name}[${i}]`).toBe(y[i]);
  }
}

describe('the report from the store', () => {
  it('cuts a timeline into columns in SQL exactly as the downsampler does from all the points', () => {
    const rows = accounting(db, TRACE);
    const range = traceSeqRange(db, TRACE)!;
    expect(range).toEqual([1, POINTS + 10]);
    for (const r of rows) {
      for (const [x0, x1, columns] of [
        [range[0], range[1], CHART_COLUMNS],
        [range[0], range[1], 1],
        [range[0], range[1], 13],
        [1000, 250_000, CHART_COLUMNS], // points on both sides of the range land in the end columns
        [range[0], range[1], 2 * POINTS],
      ] as const) {
        const sql = timelineColumns(db, TRACE, r.backend, r.pid, x0, x1, columns);
        sameColumns(sql, downsampleSteps(r.timeline, x0, x1, columns), `${r.backend}/${r.pid} ${x0}..${x1} in ${columns}`);
      }
    }
    expect(timelineColumns(db, TRACE, 'upstream', 99, 1, 10, 5).points).toBe(0);
  }, 60000);

  it('leaves the timelines out when asked, in the captured design first', () => {
    const rows = accounting(db, TRACE, { timeline: false });
    expect(rows.map((r) => `${r.backend}/${r.pid}`)).toEqual(['upstream/7', 'upstream/4242', 'rfc-v5/4242']);
    expect(rows.every((r) => r.timeline.length === 0)).toBe(true);
  });

  it('groups findings by cause in SQL as the report would in memory, divergences left out', () => {
    const groups = findingGroups(db, TRACE);
    const all = listFindings(db, { trace: TRACE, limit: 1_000_000 }).filter((f) => f.code !== 'DESIGN_DIVERGENCE');
    expect(groups).toEqual(groupFindings(all, ['upstream', 'rfc-v5']));
    expect(groups.map((g) => [g.backend, g.code, g.cause, g.count, g.first_seq, g.last_seq])).toEqual([
      ['upstream', 'UNPIN_NOT_PINNED', 'Device <uuid> unpins iova 0x#, which it has not pinned', 40_000, 11, 120_008],
      ['rfc-v5', 'ACCT_DOUBLE_CHARGE', 'pin', 40_000, 10, 120_007],
    ]);
  });
});
