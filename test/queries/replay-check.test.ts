/**
 * `state --at` and `diff` replay segment files again: a file that is not
 * the one ingested (another trace's segment put in its place, a symlink, a
 * FIFO) is refused with one line naming it, exit 2, and nothing answered.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeEach, describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const samples = join(root, 'traces/samples');
const BOOT_SHA = 'b903686481dc3ace9927c1bf9265efbeff5d7a031e5dbd25507bd4b41c011263';
const LEAK_SHA = '5ec1549d55db5cd016972ca9e8f065507a3e3408688f4e6c6c0862eddc3ed653';
let dir = '';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), ...args], { cwd: dir, encoding: 'utf8', timeout: 20000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pinledger-recheck-'));
  copyFileSync(join(samples, 'vm-boot.jsonl'), join(dir, 'vm-boot.jsonl'));
  copyFileSync(join(samples, 'leak.jsonl'), join(dir, 'leak.jsonl'));
  const r = cli('ingest', 'vm-boot.jsonl', 'leak.jsonl');
  expect(r.code, r.err).toBe(0);
});

describe('state --at and diff check each file they replay', () => {
  it('answer from the file ingested', () => {
    const s = cli('state', '--trace', 'host42/vm-boot', '--at', '5', '--json');
    expect(s.code, s.err).toBe(0);
    expect(JSON.parse(s.out).at).toBe(5);
    const d = cli('diff', '--trace', 'host42/vm-boot', '--json');
    expect(d.code, d.err).toBe(0);
  });

  it('refuse, exit 2, when another trace segment was put in its place', () => {
    const boot = join(dir, 'vm-boot.jsonl');
    copyFileSync(join(dir, 'leak.jsonl'), boot);
    const want = `pinledger: ${boot} changed since it was ingested (sha256 ${BOOT_SHA} stored, ${LEAK_SHA} now): cannot answer from it\n`;
    for (const args of [['state', '--trace', 'host42/vm-boot', '--at', '5'], ['diff', '--trace', 'host42/vm-boot'], ['diff', '--trace', 'host42/vm-boot', '--json']]) {
      const r = cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toBe(want);
    }
  });

  it('refuse when the header names another trace, even if the stored hash matches', () => {
    const boot = join(dir, 'vm-boot.jsonl');
    copyFileSync(join(dir, 'leak.jsonl'), boot);
    const db = new Database(join(dir, 'pinledger.db'));
    // content_hash is unique: the other trace's row gives its hash up first.
    db.prepare("UPDATE segments SET content_hash = 'gone' WHERE trace_id = 'host42/vgpu-leak'").run();
    db.prepare("UPDATE segments SET content_hash = ? WHERE trace_id = 'host42/vm-boot'").run(LEAK_SHA);
    db.close();
    const r = cli('state', '--trace', 'host42/vm-boot', '--at', '5');
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(`pinledger: ${boot} is segment 0 of trace host42/vgpu-leak, not segment 0 of trace host42/vm-boot: cannot answer from it\n`);
  });

  it('refuse a symlink or a FIFO in the file place, without reading it', () => {
    const boot = join(dir, 'vm-boot.jsonl');
    renameSync(boot, join(dir, 'moved.jsonl'));
    symlinkSync(join(dir, 'moved.jsonl'), boot);
    const l = cli('state', '--trace', 'host42/vm-boot', '--at', '5');
    expect(l.code).toBe(2);
    expect(l.out).toBe('');
    expect(l.err).toBe(`pinledger: ${boot} is a symbolic link now, not the file ingested: cannot answer from it\n`);
    rmSync(boot);
    expect(spawnSync('mkfifo', [boot]).status).toBe(0);
    const f = cli('diff', '--trace', 'host42/vm-boot');
    expect(f.code).toBe(2);
    expect(f.out).toBe('');
    expect(f.err).toBe(`pinledger: ${boot} is not a regular file now: cannot answer from it\n`);
  });
});
