/**
 * A drop folder others write into (issue 15): real daemons on real folders.
 * Non-regular files are never read and are moved aside with a reason; a
 * FIFO or a link to /dev/zero blocks nothing (SIGTERM exits 0 within a
 * second); a link to a secret leaves its bytes nowhere; processed/ as a
 * symlink or owned by someone else refuses the start; a config planted in
 * the drop folder is not read.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type DaemonProc, killLeftDaemons, drop, ledger, startDaemon } from './fixtures.js';

const sample = (n: string) => readFileSync(new URL(`../../traces/samples/${n}`, import.meta.url), 'utf8');
afterEach(killLeftDaemons);
function start(...a: Parameters<typeof startDaemon>): DaemonProc {
  const d = startDaemon(...a);
  return d;
}

/** Every byte of every file under dir (the database, its WAL, reason files), as latin1 text. */
function allBytes(dir: string): string {
  let out = '';
  for (const n of readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, n);
    if (lstatSync(p).isFile()) out += readFileSync(p, 'latin1');
  }
  return out;
}

describe('hostile files in the drop folder', () => {
  it('a FIFO, links to /dev/zero and to a secret, a directory: never read, moved aside, recorded; a file after them is ingested; SIGTERM exits 0 within 1 s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-hostile-'));
    const watch = join(dir, 'incoming');
    mkdirSync(watch);
    const secret = join(dir, 'shadow');
    const SECRET = 'root:$6$S3CR3T-BYTES-never-copied$:19000:0:99999:7:::';
    writeFileSync(secret, `${SECRET}\n`, { mode: 0o600 });
    expect(spawnSync('mkfifo', [join(watch, 'pipe.jsonl')]).status).toBe(0);
    symlinkSync('/dev/zero', join(watch, 'zero.jsonl'));
    symlinkSync(secret, join(watch, 'shadow.jsonl'));
    mkdirSync(join(watch, 'dir.jsonl'));
    const dbFile = join(dir, 'p.db');
    const d = start(watch, dbFile);
    await d.waitFor((l) => l.msg === 'ready');
    for (const n of ['pipe.jsonl', 'zero.jsonl', 'shadow.jsonl', 'dir.jsonl']) await d.waitFor((l) => l.file === n && l.status === 'rejected');
    drop(watch, 'after.jsonl', sample('vm-boot.jsonl'));
    await d.waitFor((l) => l.file === 'after.jsonl' && l.status === 'ingested');
    const t0 = Date.now();
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(Date.now() - t0, JSON.stringify(d.logs.slice(-3))).toBeLessThan(1000);

    const q = join(watch, 'quarantine');
    expect(readdirSync(q).sort()).toEqual([
      'dir.jsonl',
      'dir.jsonl.reason.txt',
      'pipe.jsonl',
      'pipe.jsonl.reason.txt',
      'shadow.jsonl',
      'shadow.jsonl.reason.txt',
      'zero.jsonl',
      'zero.jsonl.reason.txt',
    ]);
    // The nodes themselves moved, not their targets.
    expect(lstatSync(join(q, 'zero.jsonl')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(q, 'shadow.jsonl')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(q, 'pipe.jsonl')).isFIFO()).toBe(true);
    expect(lstatSync(join(q, 'dir.jsonl')).isDirectory()).toBe(true);
    expect(readFileSync(secret, 'utf8')).toBe(`${SECRET}\n`);
    expect(readFileSync(join(q, 'shadow.jsonl.reason.txt'), 'utf8')).toBe('shadow.jsonl: not a regular file (symlink): never read\n');
    expect(readFileSync(join(q, 'pipe.jsonl.reason.txt'), 'utf8')).toBe('pipe.jsonl: not a regular file (fifo): never read\n');
    expect(lstatSync(join(q, 'shadow.jsonl.reason.txt')).mode & 0o777).toBe(0o600);
    expect(lstatSync(join(watch, 'processed')).mode & 0o777).toBe(0o750);

    const rows = ledger(dbFile).map(({ name, status, reason, moved_to }) => ({ name, status, reason, moved_to }));
    expect(rows).toEqual([
      { name: 'after.jsonl', status: 'ingested', reason: null, moved_to: join(watch, 'processed', 'after.jsonl') },
      { name: 'dir.jsonl', status: 'rejected', reason: 'dir.jsonl: not a regular file (directory): never read', moved_to: join(q, 'dir.jsonl') },
      { name: 'pipe.jsonl', status: 'rejected', reason: 'pipe.jsonl: not a regular file (fifo): never read', moved_to: join(q, 'pipe.jsonl') },
      { name: 'shadow.jsonl', status: 'rejected', reason: 'shadow.jsonl: not a regular file (symlink): never read', moved_to: join(q, 'shadow.jsonl') },
      { name: 'zero.jsonl', status: 'rejected', reason: 'zero.jsonl: not a regular file (symlink): never read', moved_to: join(q, 'zero.jsonl') },
    ]);
    // The secret's bytes are nowhere: not in the log, not in the database or its WAL, not in a reason file.
    expect(JSON.stringify(d.logs) + d.stderr()).not.toContain('S3CR3T');
    rmSync(secret);
    expect(allBytes(dir)).not.toContain('S3CR3T');
  }, 30000);

  it('processed/ replaced by a symlink, or owned by another user: refuses to start, one line, exit 2, nothing ingested', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-hostile-'));
    const watch = join(dir, 'incoming');
    mkdirSync(watch);
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(watch, 'processed'));
    writeFileSync(join(watch, 'vm-boot.jsonl'), sample('vm-boot.jsonl'));
    const dbFile = join(dir, 'p.db');
    const d = start(watch, dbFile);
    expect(await d.exited).toBe(2);
    expect(d.stderr()).toBe(`pinledger: ${join(watch, 'processed')} is a symlink, not a directory: refusing to start (it must be a real directory owned by uid 0)\n`);
    expect(d.logs).toEqual([]);
    expect(existsSync(dbFile)).toBe(false);
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(readdirSync(watch).sort()).toEqual(['processed', 'vm-boot.jsonl']);

    rmSync(join(watch, 'processed'));
    mkdirSync(join(watch, 'processed'));
    chownSync(join(watch, 'processed'), 65534, 65534);
    const d2 = start(watch, dbFile);
    expect(await d2.exited).toBe(2);
    expect(d2.stderr()).toBe(`pinledger: ${join(watch, 'processed')} is owned by uid 65534, not by the daemon's uid 0: refusing to start\n`);
    expect(existsSync(dbFile)).toBe(false);
    expect(readdirSync(watch).sort()).toEqual(['processed', 'vm-boot.jsonl']);
  }, 30000);

  it('a pinledger.config.json planted in the drop folder is not read when the daemon runs there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-hostile-'));
    const watch = join(dir, 'incoming');
    mkdirSync(watch);
    // It would stop all intake.
    writeFileSync(join(watch, 'pinledger.config.json'), JSON.stringify({ 'stable-ms': 100000000 }));
    const dbFile = join(dir, 'p.db');
    const d = start(watch, dbFile, [], { cwd: watch });
    await d.waitFor((l) => l.msg === 'ready');
    drop(watch, 'vm-boot.jsonl', sample('vm-boot.jsonl'));
    await d.waitFor((l) => l.file === 'vm-boot.jsonl' && l.status === 'ingested');
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(d.stderr()).toBe(`pinledger: not reading ./pinledger.config.json: the working directory is inside the drop folder ${watch}\n`);
    // By its name it is a trace file: taken as one, and quarantined as a bad one.
    expect(ledger(dbFile).map((r) => [r.name, r.status])).toEqual([
      ['pinledger.config.json', 'quarantined'],
      ['vm-boot.jsonl', 'ingested'],
    ]);
  }, 30000);
});
