/**
 * `ingest --kernel`: the kernel new traces are held to, over their headers'
 * (the zero-page rule). The real QEMU 7.2 start captured on 6.1
 * (tools/capture/sample-output.jsonl) needs 256 MiB as 6.1 charged it, and
 * 64 pages more as 6.12 would (pc.bios, mapped READ-only before QEMU wrote it).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const cli = (...args: string[]) => spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), ...args], { encoding: 'utf8' });
const sample = join(root, 'tools/capture/sample-output.jsonl');

function required(kernel?: string): number {
  const db = join(mkdtempSync(join(tmpdir(), 'pinledger-kernel-')), 'p.db');
  const r = cli('ingest', sample, '--db', db, ...(kernel ? ['--kernel', kernel] : []));
  expect(r.status, r.stderr).toBe(0);
  const a = JSON.parse(cli('accounting', '--db', db, '--trace', 'lab/all/2-qemu-system-x86', '--json').stdout) as { accounting: { memlock_required: number }[] };
  return a.accounting[0]!.memlock_required;
}

describe('ingest --kernel', () => {
  it('the header kernel (6.1): 65536 pages; --kernel 6.12: 65600', () => {
    expect(required()).toBe(65536 * 4096);
    expect(required('6.12.48+deb12-amd64')).toBe(65600 * 4096);
  });
  it('a kernel that is not a release: exit 2, one line, no database', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-kernel-'));
    const r = cli('ingest', sample, '--db', join(dir, 'p.db'), '--kernel', 'banana');
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(spawnSync('ls', [dir], { encoding: 'utf8' }).stdout).toBe('');
  });
});
