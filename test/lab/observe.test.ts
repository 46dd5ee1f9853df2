/** The observed trace from the helper's answers: no QEMU needed. */
import { describe, expect, it } from 'vitest';
import { observedTrace, parseResult, type StepResult } from '../../src/lab/observe.js';

const lab = { kernel: '6.1.0-57-amd64', kernelPackage: 'linux-image-6.1.0-57-amd64', machine: 'm', groups: [] };
const header = { type: 'header', format: 'vfio-trace', version: 2, trace_id: 't' };
const results = (lines: string[]) => new Map<number, StepResult>(lines.map((l) => parseResult(l)!).map((r) => [r.seq, r]));

describe('observedTrace', () => {
  it('records what mlockall(MCL_CURRENT) locked as pages, the kernel\'s errno by name, and a dup\'s descriptor', () => {
    const out = observedTrace(
      [
        header,
        { type: 'mlockall', seq: 1, pid: 7, flags: ['CURRENT', 'FUTURE'], pages: 3 },
        { type: 'mlockall', seq: 2, pid: 7, flags: ['FUTURE'] },
        { type: 'mlock', seq: 3, pid: 7, vaddr: '0x1000', size: '0x1000' },
        { type: 'dup', seq: 4, pid: 7, fd: 20, newfd: 30, call: 'dup' },
        { type: 'process', seq: 5, pid: 8, op: 'fork', parent: 7 },
      ],
      results(['R 1 0 3680 pages=920', 'R 2 0 3680 pages=0', 'R 3 -12 3680', 'R 4 30 3680', 'R 5 0 3680 pid=99']),
      lab,
    );
    expect(out.slice(1)).toEqual([
      { type: 'mlockall', seq: 1, pid: 7, flags: ['CURRENT', 'FUTURE'], pages: 920, ret: 0, locked_vm: 920 },
      { type: 'mlockall', seq: 2, pid: 7, flags: ['FUTURE'], ret: 0, locked_vm: 920 },
      { type: 'mlock', seq: 3, pid: 7, vaddr: '0x1000', size: '0x1000', ret: 'ENOMEM', locked_vm: 920 },
      { type: 'dup', seq: 4, pid: 7, fd: 20, newfd: 30, call: 'dup', ret: 30, locked_vm: 920 },
      { type: 'process', seq: 5, pid: 8, op: 'fork', parent: 7 },
    ]);
  });
});
