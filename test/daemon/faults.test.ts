/**
 * Failures root would not see, through a daemon that is not root (uid
 * nobody): an unreadable file (recorded, taken once readable), a
 * predecessor whose move fails (its successor is still released), a
 * read-only database (one fatal line, exit 1).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type DaemonProc, killLeftDaemons, NOBODY, churnSegments, drop, ledger, startDaemon } from './fixtures.js';

const root = new URL('../..', import.meta.url).pathname;
const sample = (n: string) => join(root, 'traces/samples', n);
afterEach(killLeftDaemons);

/** A state directory and drop folder owned by nobody. */
function nobodyDirs(): { state: string; watch: string; dbFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pinledger-faults-'));
  chmodSync(dir, 0o755);
  const state = join(dir, 'state');
  const watch = join(dir, 'incoming');
  for (const d of [state, watch]) {
    mkdirSync(d);
    chownSync(d, NOBODY, NOBODY);
  }
  return { state, watch, dbFile: join(state, 'p.db') };
}

function start(watch: string, dbFile: string): DaemonProc {
  const d = startDaemon(watch, dbFile, [], { uid: NOBODY, gid: NOBODY, cwd: '/' });
  return d;
}

describe('a busy database', () => {
  it('is retried with backoff, each attempt logged, and the file ingested once the lock is let go', async () => {
    const { watch, dbFile } = nobodyDirs();
    const d = startDaemon(watch, dbFile);
    await d.waitFor((l) => l.msg === 'ready');
    const other = new Database(dbFile, { timeout: 0 });
    other.exec('BEGIN IMMEDIATE');
    drop(watch, 'busy.jsonl', readFileSync(sample('vm-boot.jsonl'), 'utf8'));
    const first = await d.waitFor((l) => l.msg === 'store fault: retrying' && l.attempt === 2);
    expect(first).toMatchObject({ file: 'busy.jsonl', code: 'SQLITE_BUSY', retry_in_ms: 200 });
    other.exec('ROLLBACK');
    other.close();
    await d.waitFor((l) => l.file === 'busy.jsonl' && l.status === 'ingested');
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(d.logs.filter((l) => l.msg === 'store fault: retrying').map((l) => l.attempt).slice(0, 2)).toEqual([1, 2]);
    expect(ledger(dbFile).map((r) => [r.name, r.status])).toEqual([['busy.jsonl', 'ingested']]);
  }, 30000);
});

describe('faults a daemon that is not root meets', () => {
  it('an unreadable file is logged and recorded, and taken when it becomes readable', async () => {
    const { watch, dbFile } = nobodyDirs();
    const d = start(watch, dbFile);
    await d.waitFor((l) => l.msg === 'ready');
    const f = join(watch, 'locked.jsonl');
    copyFileSync(sample('vm-boot.jsonl'), f);
    chmodSync(f, 0o600);
    await d.waitFor((l) => l.file === 'locked.jsonl' && l.status === 'unreadable');
    expect(ledger(dbFile).map((r) => [r.name, r.status, r.reason])).toEqual([['locked.jsonl', 'unreadable', 'locked.jsonl: cannot be opened (permission denied): taken again when it changes']]);
    chmodSync(f, 0o644);
    await d.waitFor((l) => l.file === 'locked.jsonl' && l.status === 'ingested');
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(ledger(dbFile).map((r) => [r.name, r.status, r.reason])).toEqual([['locked.jsonl', 'ingested', null]]);
  }, 30000);

  it("a predecessor whose move fails still releases its waiting successor", async () => {
    const { watch, dbFile } = nobodyDirs();
    const d = start(watch, dbFile);
    await d.waitFor((l) => l.msg === 'ready');
    chmodSync(join(watch, 'processed'), 0o500);
    const [s0, s1] = churnSegments('move/t', 2, 50);
    drop(watch, 's1.jsonl', s1!);
    await d.waitFor((l) => l.file === 's1.jsonl' && l.status === 'waiting');
    drop(watch, 's0.jsonl', s0!);
    await d.waitFor((l) => l.file === 's1.jsonl' && l.status === 'ingested');
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(d.logs.filter((l) => l.msg === 'move failed: the file stays in the folder').map((l) => l.file)).toEqual(['s0.jsonl', 's1.jsonl']);
    expect(ledger(dbFile).map((r) => [r.name, r.status, r.segment, r.moved_to])).toEqual([
      ['s0.jsonl', 'ingested', 0, null],
      ['s1.jsonl', 'ingested', 1, null],
    ]);
    expect(readdirSync(watch).sort()).toEqual(['processed', 'quarantine', 's0.jsonl', 's1.jsonl']);
  }, 30000);

  it('a read-only database: one fatal log line naming the code, exit 1', async () => {
    const { watch, dbFile } = nobodyDirs();
    // A database made by root, which nobody may only read.
    const made = spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), 'ingest', sample('leak.jsonl'), '--db', dbFile], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    chmodSync(dbFile, 0o644);
    copyFileSync(sample('vm-boot.jsonl'), join(watch, 'vm-boot.jsonl'));
    const d = start(watch, dbFile);
    expect(await d.exited).toBe(1);
    const fatal = d.logs.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ msg: 'fatal' });
    expect(String(fatal[0]!.code)).toMatch(/^SQLITE_READONLY/);
    expect(d.stderr()).toBe('');
    expect(ledger(dbFile).map((r) => [r.name, r.status])).toEqual([['leak.jsonl', 'ingested']]);
    expect(readdirSync(watch)).toContain('vm-boot.jsonl');
  }, 30000);
});
