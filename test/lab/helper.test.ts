/**
 * The lab helper's processes on this machine's kernel (no VFIO, no QEMU):
 * each step runs in the worker it names, in order, a fork's child has its
 * parent's descriptors but not its mlocks, an exec keeps the descriptors
 * and drops the address space, and every step is answered. Needs gcc.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseResult, type StepResult } from '../../src/lab/observe.js';

const root = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'pinledger-helper-'));
const bin = join(dir, 'vfio-lab');

function run(steps: string[]): StepResult[] {
  const file = join(dir, 'steps');
  writeFileSync(file, steps.join('\n') + '\n');
  const out = execFileSync(bin, [file], { encoding: 'utf8' });
  return out.trim().split('\n').map((l) => parseResult(l) ?? { seq: -1, ret: 0, vmlckKb: 0, kv: { line: l } });
}

describe('vfio-lab helper processes', () => {
  beforeAll(() => {
    execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-static', '-o', bin, join(root, 'lab/helper/vfio-lab.c')]);
  }, 60_000);

  it('runs each step in its worker, in order: fork copies the descriptors but not the mlocks, exec keeps the descriptors and drops the address space', () => {
    const r = run([
      '1 0 mmap 0x7f2000000000 0x100000 anon READ,WRITE PRIVATE,ANONYMOUS',
      '2 0 mlock 0x7f2000000000 0x80000 -',
      '3 0 open 20 /dev/null',
      '4 0 dup 20 30 dup',
      '5 0 fork 1',
      '6 1 mlock 0x7f2000000000 0x10000 -',
      '7 0 close 30',
      '8 1 close 30',
      '9 1 exec',
      '10 1 mlock 0x7f2000000000 0x1000 -',
      '11 1 close 20',
      '12 1 exit',
      '13 0 close 20',
      '14 0 close 20',
      '15 0 munlock 0x7f2000000000 0x80000',
    ]);
    expect(r.map((x) => [x.seq, x.ret, x.vmlckKb])).toEqual([
      [1, 0, 0],
      [2, 0, 512],
      [3, 20, 512],
      [4, 30, 512], // dup's kernel-chosen descriptor moved to the trace's
      [5, 0, 512],
      [6, 0, 64], // the child's own VmLck: VM_LOCKED is not inherited
      [7, 0, 512],
      [8, 0, 64], // the child's copy of fd 30 was still open
      [9, 0, 0], // a new address space
      [10, -12, 0], // its old mapping is gone: mlock of unmapped memory is ENOMEM
      [11, 0, 0], // fd 20 survived the exec
      [12, 0, 0],
      [13, 0, 512],
      [14, -9, 512],
      [15, 0, 0],
    ]);
    expect(r[4]!.kv.pid).toMatch(/^\d+$/);
  });

  it('answers a dup2 onto an open descriptor, fcntl(F_DUPFD) and dup3, and measures what mlockall(MCL_CURRENT) locked', () => {
    const r = run([
      '1 0 open 20 /dev/null',
      '2 0 open 21 /dev/zero',
      '3 0 dup 20 21 dup2',
      '4 0 dup 21 40 fcntl',
      '5 0 dup 40 41 dup3',
      '6 0 dup 41 41 dup3',
      '7 0 mmap 0x7f3000000000 0x10000 anon READ,WRITE PRIVATE,ANONYMOUS',
      '8 0 mlockall CURRENT',
      '9 0 munlockall',
    ]);
    expect(r.slice(0, 6).map((x) => x.ret)).toEqual([20, 21, 21, 40, 41, -22]);
    expect(Number(r[7]!.kv.pages)).toBe(r[7]!.vmlckKb / 4);
    expect(Number(r[7]!.kv.pages)).toBeGreaterThanOrEqual(16);
    expect(r[8]).toMatchObject({ ret: 0, vmlckKb: 0 });
  });
});
