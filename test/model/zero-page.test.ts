import { describe, expect, it } from 'vitest';
import { profileForRelease } from '../../src/model/kernel/choose.js';
import { parseKernelRelease } from '../../src/model/kernel/profile.js';
import { DifferentialReplay } from '../../src/model/replay/differential.js';
import { restoreReplay, saveReplay } from '../../src/model/state/snapshot.js';
import { upstreamDriver } from '../../src/model/backends/upstream/index.js';
import { parseTraceText } from '../../src/trace/line-parser.js';
import { MiB, codes, hx, lockedVm, retOf, setup, trace, type Ev } from '../helpers.js';
import { getDeviceFd, mapFd, pin, ram, run2 } from './v2.js';

const VA = 0x7f0000000000n;
const K61 = '6.1.0-57-amd64';
const K612 = '6.12.48+deb12-amd64';
const ro = (iova: bigint, size: bigint, vaddr = VA) => mapFd(20, iova, size, vaddr, 100, ['READ']);
const rw = (iova: bigint, size: bigint, vaddr = VA) => mapFd(20, iova, size, vaddr);

describe('kernel profiles: the release decides the zero-page rule, with the boundary at 6.2 (commit 84209e87c696)', () => {
  const cases: [string, string][] = [
    ['6.1.0-57-amd64', 'linux-6.1'],
    ['6.1', 'linux-6.1'],
    ['5.10.0-30-amd64', 'linux-6.1'],
    ['6.2', 'linux-6.12'],
    ['6.8.0-45-generic', 'linux-6.12'],
    ['6.12.48+deb12-amd64', 'linux-6.12'],
    ['v6.12.1', 'linux-6.12'],
  ];
  for (const [release, id] of cases) {
    it(`profileForRelease ${release} is ${id}`, () => {
      const c = profileForRelease(release);
      expect(c.ok && c.profile.id).toBe(id);
    });
  }

  it('parseKernelRelease refuses what is not a release', () => {
    expect(parseKernelRelease('6.1.0-57-amd64')).toEqual({ major: 6, minor: 1 });
    expect(parseKernelRelease('debian')).toBeUndefined();
    expect(profileForRelease('linux')).toEqual({ ok: false, reason: 'kernel "linux" is not a release such as 6.1.0-57-amd64' });
  });
});

describe('a READ-only map of private anonymous memory never written', () => {
  const untouched = (kernel?: string, over?: string) => run2([...setup(), ram(VA, MiB), ro(0n, MiB)], kernel === undefined ? {} : { kernel }, over);

  it('is not charged on 6.1: the shared zero page is a reserved pfn (0 pages)', () => {
    expect(lockedVm(untouched(K61))).toBe(0);
  });

  it('is charged on 6.12: GUP unshares the zero page into new anonymous pages (256 pages)', () => {
    expect(lockedVm(untouched(K612))).toBe(256);
  });

  it('is charged with no kernel named, as the model always assumed (256 pages)', () => {
    expect(lockedVm(untouched())).toBe(256);
  });

  it('follows --kernel over the header: 6.12 over a 6.1 header charges 256, 6.1 over a 6.12 header 0', () => {
    expect(lockedVm(untouched(K61, K612))).toBe(256);
    expect(lockedVm(untouched(K612, K61))).toBe(0);
  });

  it('is charged on 6.1 once a write map touched it: RO 0, then RW +256, then RO again +256 (the same frames, reported shared)', () => {
    const r = run2([...setup(), ram(VA, MiB), ro(0n, MiB), rw(0x1000000n, MiB), ro(0x2000000n, MiB)], { kernel: K61 });
    expect(r.outcomes.slice(6).map((o) => o.ret)).toEqual([0, 0, 0]);
    expect(lockedVm(r)).toBe(512);
    expect(codes(r)).toEqual(['ACCT_SHARED_FRAMES']);
  });

  it('is charged on 6.1 where only part was written: a RW map of the first 16 pages leaves 240 on the zero page', () => {
    const r = run2([...setup(), ram(VA, MiB), rw(0x1000000n, 0x10000n), ro(0n, MiB)], { kernel: K61 });
    expect(lockedVm(r)).toBe(16 + 16);
  });

  it('is charged on 6.1 with MAP_POPULATE, after mlock (populated), and for shared or file memory', () => {
    const populate = run2([...setup(), ram(VA, MiB, 100, ['POPULATE']), ro(0n, MiB)], { kernel: K61 });
    expect(lockedVm(populate)).toBe(256);
    const mlocked = run2([...setup(), ram(VA, MiB), { type: 'mlock', pid: 100, vaddr: hx(VA), size: hx(MiB) }, { type: 'munlock', pid: 100, vaddr: hx(VA), size: hx(MiB) }, ro(0n, MiB)], { kernel: K61 });
    expect(lockedVm(mlocked)).toBe(256);
    const shared: Ev = { type: 'mmap', pid: 100, vaddr: hx(VA), size: hx(MiB), backing: 'shared', prot: ['READ', 'WRITE'], flags: ['SHARED', 'ANONYMOUS'] };
    expect(lockedVm(run2([...setup(), shared, ro(0n, MiB)], { kernel: K61 }))).toBe(256);
    const file: Ev = { type: 'mmap', pid: 100, vaddr: hx(VA), size: hx(MiB), backing: 'file', prot: ['READ'], flags: ['PRIVATE'], fd: 7, offset: 0 };
    expect(lockedVm(run2([...setup(), file, ro(0n, MiB)], { kernel: K61 }))).toBe(256);
  });

  it('stays the zero page on 6.1 after mlock ONFAULT (locked, not populated): 256 mlocked, the map adds 0', () => {
    const r = run2([...setup(), ram(VA, MiB), { type: 'mlock', pid: 100, vaddr: hx(VA), size: hx(MiB), flags: ['ONFAULT'] }, ro(0n, MiB)], { kernel: K61 });
    expect(lockedVm(r)).toBe(256);
  });

  it('is charged on 6.1 when the mmap gave no flags (version 1 memory is taken as touched)', () => {
    const r = run2([...setup(), { type: 'mmap', pid: 100, vaddr: hx(VA), size: hx(MiB), backing: 'anon' }, ro(0n, MiB)], { kernel: K61 });
    expect(lockedVm(r)).toBe(256);
  });

  it('gives the vendor driver the zero page on 6.1 through a READ-only mapping: a mediated-only container charges 0, on 6.12 2', () => {
    const T = { topology: { groups: [{ id: 40, mdev_parent: '0000:00:02.0', devices: ['mdev-a'] }] } };
    const pins = (kernel: string) => run2([...setup({ groups: [40] }), ram(VA, MiB), ro(0n, MiB), getDeviceFd(21, 'mdev-a', 22), pin('mdev-a', 0n, 2, ['READ'])], { ...T, kernel });
    const r61 = pins(K61);
    expect(retOf(r61, 9)).toBe(2);
    expect(lockedVm(r61)).toBe(0);
    expect(lockedVm(pins(K612))).toBe(2);
  });

  it('survives a saved and restored replay: the profile is saved with the state', () => {
    const text = trace([...setup(), ram(VA, MiB), ro(0n, MiB), ro(0x1000000n, MiB, VA)], { version: 2, kernel: K61 });
    const { header, events } = parseTraceText(text);
    let d = new DifferentialReplay(new Map([['upstream', upstreamDriver]]), 'upstream');
    d.beginSegment(header);
    events.slice(0, 7).forEach((e) => d.apply(e));
    d = restoreReplay(saveReplay(d));
    events.slice(7).forEach((e) => d.apply(e));
    expect(d.replayers.get('upstream')!.modelEnv!.processes.get(100)!.lockedVm).toBe(0);
  });

  it('reports a header kernel it cannot read, and keeps the default (charged)', () => {
    const r = run2([...setup(), ram(VA, MiB), ro(0n, MiB)], { kernel: 'custom' });
    expect(lockedVm(r)).toBe(256);
    expect(r.findings.map((f) => [f.seq, f.code, f.message])).toEqual([
      [1, 'TRACE_KERNEL', `The header's kernel "custom" is not a release such as 6.1.0-57-amd64: the model keeps its default kernel profile (every pinned page charged, the zero page too)`],
    ]);
  });
});

describe('device memory (a BAR mmap, VM_PFNMAP) is pinned without a charge', () => {
  const T = { topology: { groups: [{ id: 12, devices: ['0000:01:00.0'] }] } };
  const bar = (backing: string): Ev => ({ type: 'mmap', pid: 100, vaddr: '0x7f5000000000', size: '0x20000', backing, prot: ['READ', 'WRITE'], flags: ['SHARED'], fd: 22, offset: 0 });

  it('charges 0 pages for a 32-page BAR map, 256 for the RAM beside it', () => {
    const r = run2([...setup(), getDeviceFd(21, '0000:01:00.0', 22), bar('pfnmap'), rw(0n, MiB), mapFd(20, 0x100000000n, 0x20000n, 0x7f5000000000n)], T);
    expect(lockedVm(r)).toBe(256);
    expect(codes(r)).toEqual([]);
    const dmas = r.vfio!.backends()[0]!.snapshot().dmas;
    expect(dmas.map((d) => d.charged)).toEqual([256, 0]);
  });

  it('takes an mmap of a device fd as pfnmap whatever its backing says, and reports it', () => {
    const r = run2([...setup(), getDeviceFd(21, '0000:01:00.0', 22), bar('anon'), mapFd(20, 0x100000000n, 0x20000n, 0x7f5000000000n)], T);
    expect(lockedVm(r)).toBe(0);
    expect(codes(r)).toEqual(['TRACE_INCONSISTENT']);
  });
});
