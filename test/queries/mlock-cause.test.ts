/**
 * mlock in the store (schema version 4): the memlock answer's pages by
 * cause keep the mlocked part (`peak_by_cause.mlock`) for a process that
 * locked memory, and have no such key for one that never did (every
 * version 1 trace).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const cli = (...args: string[]) => spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), ...args], { encoding: 'utf8' });

describe('accounting --json: pages by cause with mlock', () => {
  const db = join(mkdtempSync(join(tmpdir(), 'pinledger-mlock-')), 'p.db');
  it('an mlock workload (test/lab/fixtures/mlock.jsonl): 528 mlocked and 192 DMA pages at the needed peak', () => {
    expect(cli('ingest', join(root, 'test/lab/fixtures/mlock.jsonl'), '--db', db).status).toBe(0);
    const r = cli('accounting', '--db', db, '--trace', 'lab/mlock', '--json');
    expect(r.status, r.stderr).toBe(0);
    const rows = (JSON.parse(r.stdout) as { accounting: { pid: number; peak_by_cause: Record<string, number> }[] }).accounting;
    expect(rows.map((x) => x.peak_by_cause)).toEqual([{ direct: 192, pins: 0, shared: 0, mlock: 528 }]);
  });
  it('a version 1 trace has no mlock cause', () => {
    expect(cli('ingest', join(root, 'traces/samples/limit-overrun.jsonl'), '--db', db).status).not.toBe(2);
    const id = (JSON.parse(cli('traces', '--db', db, '--json').stdout) as { traces: { trace_id: string }[] }).traces;
    const other = id.map((t) => t.trace_id).find((t) => t !== 'lab/mlock')!;
    const rows = (JSON.parse(cli('accounting', '--db', db, '--trace', other, '--json').stdout) as { accounting: { peak_by_cause: Record<string, number> }[] }).accounting;
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(Object.keys(row.peak_by_cause).sort()).toEqual(['direct', 'pins', 'shared']);
  });
});
