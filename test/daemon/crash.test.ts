/**
 * Crash safety: a real daemon killed with SIGKILL again and again while it
 * ingests, then restarted, ends with the same database as one clean ingest:
 * every file exactly once, nothing half-written, nothing left behind.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { type DaemonProc, churnSegments, drop, startDaemon } from './fixtures.js';

const root = new URL('../..', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let live: DaemonProc | undefined;

afterEach(() => {
  if (live && live.child.exitCode === null) live.child.kill('SIGKILL');
});

/** A deterministic random sequence (the kill times). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

function dump(file: string) {
  const db = new Database(file, { readonly: true });
  const out = {
    traces: db.prepare('SELECT trace_id, backends, last_segment, last_seq, events, findings_error, findings_warning, findings_info FROM traces ORDER BY trace_id').all(),
    segments: db.prepare('SELECT trace_id, segment, file_name, content_hash, status, events, first_seq, last_seq, error FROM segments ORDER BY trace_id, segment').all(),
    findings: db.prepare('SELECT trace_id, segment, backend, code, severity, seq, message, details, event, context FROM findings ORDER BY trace_id, backend, seq, code, message').all(),
    lockedVm: db.prepare('SELECT * FROM locked_vm ORDER BY trace_id, backend, pid, seq').all(),
    accounting: db.prepare('SELECT * FROM accounting ORDER BY trace_id, backend, pid').all(),
    state: db.prepare('SELECT trace_id, segment, state FROM segment_state ORDER BY trace_id, segment').all(),
  };
  db.close();
  return out;
}

describe('crash safety', () => {
  it('survives 20 kill -9 in a row mid-ingest with no loss and no duplicate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-crash-'));
    const files = join(dir, 'files');
    mkdirSync(files);
    const names: string[] = [];
    churnSegments('crash/churn', 8, 12000).forEach((text, i) => names.push(drop(files, `churn-${i}.jsonl`, text)));
    for (const s of ['vm-boot', 'mixed-direct-mdev', 'vgpu-churn', 'invalid-seq']) {
      cpSync(join(root, 'traces/samples', `${s}.jsonl`), join(files, `${s}.jsonl`));
      names.push(join(files, `${s}.jsonl`));
    }

    // The reference: one clean ingest of the same files.
    const cleanDb = join(dir, 'clean.db');
    const clean = spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), 'ingest', ...names, '--db', cleanDb], { encoding: 'utf8' });
    expect(clean.status).toBe(2); // the invalid sample
    const want = dump(cleanDb);
    expect(want.segments.filter((s) => (s as { status: string }).status === 'ingested')).toHaveLength(11);

    const watch = join(dir, 'incoming');
    mkdirSync(watch);
    // Out of order on purpose: the last churn segment lands first.
    for (const f of [...names].reverse()) cpSync(f, join(watch, f.split('/').pop()!));
    const dbFile = join(dir, 'p.db');
    const rand = lcg(1234);
    let killedWhileWorking = 0;
    for (let k = 0; k < 20; k++) {
      live = startDaemon(watch, dbFile);
      // Every other kill comes after ready, so a loaded machine (a slow start) still kills daemons at work;
      // the others land anywhere, startup and migrations included.
      if (k % 2 === 1) await live.waitFor((l) => l.msg === 'ready', 30000);
      await sleep((k % 2 === 1 ? 0 : 150) + Math.floor(rand() * 700));
      live.child.kill('SIGKILL');
      await live.exited;
      // Ready, and the folder not yet empty: the kill hit a daemon at work.
      if (live.logs.some((l) => l.msg === 'ready') && readdirSync(watch).some((f) => f.endsWith('.jsonl'))) killedWhileWorking++;
    }
    expect(killedWhileWorking).toBeGreaterThanOrEqual(5);
    live = startDaemon(watch, dbFile);
    const deadline = Date.now() + 120000;
    while (readdirSync(watch).some((f) => f.endsWith('.jsonl')) && Date.now() < deadline) await sleep(100);
    live.child.kill('SIGTERM');
    expect(await live.exited).toBe(0);

    expect(readdirSync(watch).filter((f) => f.endsWith('.jsonl'))).toEqual([]);
    expect(readdirSync(join(watch, 'processed')).sort()).toEqual(names.filter((n) => !n.includes('invalid')).map((n) => n.split('/').pop()).sort());
    expect(readdirSync(join(watch, 'quarantine')).sort()).toEqual(['invalid-seq.jsonl', 'invalid-seq.jsonl.reason.txt']);
    const got = dump(dbFile);
    expect(got.segments).toEqual(want.segments);
    expect(got.traces).toEqual(want.traces);
    expect(got.findings).toEqual(want.findings);
    expect(got.lockedVm).toEqual(want.lockedVm);
    expect(got.accounting).toEqual(want.accounting);
    expect(got.state).toEqual(want.state);
    expect(readFileSync(join(watch, 'quarantine', 'invalid-seq.jsonl.reason.txt'), 'utf8')).toContain('invalid-seq.jsonl:5: field seq');
  }, 300000);

  it('rolls back the file in progress on SIGTERM, exits 0, and takes it again on restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-term-'));
    const watch = join(dir, 'incoming');
    mkdirSync(watch);
    const dbFile = join(dir, 'p.db');
    live = startDaemon(watch, dbFile);
    await live.waitFor((l) => l.msg === 'ready');
    const [big] = churnSegments('term/big', 1, 400000);
    drop(watch, 'big.jsonl', big!);
    // Let the ingest get going, then stop.
    await sleep(1500);
    live.child.kill('SIGTERM');
    expect(await live.exited).toBe(0);
    const stopped = live.logs.find((l) => l.file === 'big.jsonl');
    const db = new Database(dbFile, { readonly: true });
    const rows = (db.prepare('SELECT count(*) AS n FROM segments').get() as { n: number }).n;
    db.close();
    if (stopped?.status === 'aborted') {
      expect(rows).toBe(0);
      expect(readdirSync(watch)).toContain('big.jsonl');
    }
    live = startDaemon(watch, dbFile);
    await live.waitFor((l) => l.file === 'big.jsonl' && (l.status === 'ingested' || l.status === 'duplicate'), 120000);
    live.child.kill('SIGTERM');
    expect(await live.exited).toBe(0);
    const db2 = new Database(dbFile, { readonly: true });
    expect(db2.prepare('SELECT trace_id, segment, status, events FROM segments').all()).toEqual([{ trace_id: 'term/big', segment: 0, status: 'ingested', events: 400000 }]);
    db2.close();
  }, 300000);
});
