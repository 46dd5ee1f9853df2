/**
 * The audit commands on the store of a 5M-event trace: a locked_vm timeline
 * of five million change points, written straight into a database of the
 * project's schema (replaying 5M events is the bench's job). accounting,
 * report and sql must answer without overflowing the stack or holding the
 * whole timeline, and the report must stay under 1 MB.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.js';

const root = new URL('../..', import.meta.url).pathname;
const POINTS = 5_000_000;
let dir: string;
let db: string;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), ...args, '--db', db], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 30 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pinledger-long-'));
  db = join(dir, 'long.db');
  const w = openStore(db);
  w.exec(`INSERT INTO traces (trace_id, backends, last_segment, last_seq, events, first_seen, updated_at, page_size)
          VALUES ('long/vgpu', '["upstream"]', 0, ${POINTS}, ${POINTS}, 0, 0, 4096)`);
  w.exec(`INSERT INTO segments (trace_id, segment, file_name, content_hash, status, events, first_seq, last_seq, started_at, finished_at, duration_ms)
          VALUES ('long/vgpu', 0, 'long.jsonl', 'x', 'ingested', ${POINTS}, 1, ${POINTS}, 0, 0, 0)`);
  // A sawtooth 0..1023 pages, one change point per event, with one spike to 65536 pages at seq 2,450,000.
  w.exec(`WITH RECURSIVE s(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM s WHERE seq < ${POINTS})
          INSERT INTO locked_vm (trace_id, backend, pid, seq, locked_vm)
          SELECT 'long/vgpu', 'upstream', 4242, seq, CASE WHEN seq = 2450000 THEN 65536 ELSE seq % 1024 END FROM s`);
  w.exec(`INSERT INTO accounting (trace_id, backend, pid, peak_locked_vm, final_locked_vm, memlock_required, peak_direct, peak_pins, peak_shared, peak_seq,
            memlock_limit, memlock_short, limit_refusals, containers)
          VALUES ('long/vgpu', 'upstream', 4242, 65536, ${POINTS % 1024}, ${65536 * 4096}, 0, 65536, 0, 2450000, ${1 << 30}, 0, 0, 1)`);
  w.close();
}, 120000);

describe('audit commands on a 5M-event trace', () => {
  it('accounting draws the timeline and leads with the answer', () => {
    const r = cli('accounting', '--trace', 'long/vgpu');
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe('pid 4242 needs RLIMIT_MEMLOCK >= 262,144 KiB (268,435,456 bytes, 256 MiB); the limit in force was 1,048,576 KiB, enough');
    const chart = /timeline {2}\|(.*)\| {2}seq 1\.\.5000000$/.exec(lines.find((l) => l.includes('timeline'))!)!;
    expect([...chart[1]!]).toHaveLength(60);
    // The spike is the maximum: its column is full, every other is low.
    expect([...chart[1]!].filter((c) => c === '█')).toHaveLength(1);
  }, 120000);

  it('accounting --json streams every point of the timeline', () => {
    const r = cli('accounting', '--trace', 'long/vgpu', '--json');
    expect(r.code, r.err).toBe(0);
    const points = r.out.match(/^ {8}\[\d+,\d+\]/gm)!;
    expect(points).toHaveLength(POINTS);
    expect(points[2449999]).toBe('        [2450000,65536]');
    // Around the timeline, the documented shape.
    const at = r.out.indexOf('"timeline": [');
    const head = r.out.slice(0, at);
    expect(head).toContain('"memlock_required": 268435456,');
    expect(r.out.slice(-80)).toMatch(/ {8}\[5000000,\d+\]\n {6}\],\n {6}"role": "deciding"\n {4}\}\n {2}\]\n\}\n$/);
  }, 180000);

  it('report stays under 1 MB and shows the spike', () => {
    const out = join(dir, 'long.html');
    const r = cli('report', '--trace', 'long/vgpu', '-o', out);
    expect(r.code, r.err).toBe(0);
    expect(statSync(out).size).toBeLessThan(1 << 20);
    expect(readFileSync(out, 'utf8')).toContain('pid 4242 needs RLIMIT_MEMLOCK &gt;= 262,144 KiB');
  }, 120000);

  it('sql streams five million rows', () => {
    // Past the default limits (10,000 rows, 10 s), raised for an export of every point.
    const r = cli('sql', 'SELECT seq, locked_vm FROM locked_vm ORDER BY seq', '--max-rows', String(POINTS), '--timeout', '150');
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines).toHaveLength(POINTS + 1);
    expect(lines[2450000]).toMatch(/^2450000\s+65536$/);
    const j = cli('sql', 'SELECT count(*) AS n, max(locked_vm) AS peak FROM locked_vm', '--json');
    expect(JSON.parse(j.out)).toEqual({ columns: ['n', 'peak'], rows: [{ n: POINTS, peak: 65536 }], truncated: false });
  }, 180000);
});
