/**
 * exec gives the process a new mm; each vfio_dma stays tied to the mm that
 * mapped it (vfio_dma->mm, upstream 046eca5018f8 "vfio/type1: Prevent
 * underflow of locked_vm via exec()", v6.2, in 6.1.y stable): measured on
 * Debian 12's 6.1.0-57-amd64 (fixtures/exec-captured-6.1.jsonl, a real
 * capture of test/lab/fixtures/exec.jsonl).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../../src/model/backends/index.js';
import { upstreamDriver } from '../../src/model/backends/upstream/index.js';
import { Errno } from '../../src/model/errno.js';
import { DifferentialReplay } from '../../src/model/replay/differential.js';
import { Replayer } from '../../src/model/replay/replayer.js';
import { restoreReplay, saveReplay } from '../../src/model/state/snapshot.js';
import { replayFiles } from '../../src/replay/replay-files.js';
import { parseTraceText } from '../../src/trace/line-parser.js';
import { MiB, codes, hx, lockedVm, retOf, setup, type Ev } from '../helpers.js';
import { getDeviceFd, mapFd, pin, run2, unmapFd } from './v2.js';

const fixture = new URL('./fixtures/exec-captured-6.1.jsonl', import.meta.url).pathname;
const PID = 1669;
const KERNEL_612 = '6.12.48+deb12-amd64';

describe('the captured exec (Debian 12, 6.1.0-57) replays to the kernel values', () => {
  for (const kernel of [undefined, KERNEL_612]) {
    it(`no RET_MISMATCH, no ACCT_MISMATCH, no finding at all (kernel profile ${kernel ?? 'of the header, 6.1'})`, async () => {
      const [t] = await replayFiles([fixture], new Map([['upstream', BACKENDS.upstream!]]), { keepOutcomes: true, ...(kernel ? { kernel } : {}) });
      const r = t!.replayers.get('upstream')!;
      expect(r.findings.map((f) => `${f.seq} ${f.code}`)).toEqual([]);
      // seq 479: the old mapping's unmap succeeds with all its 256 pages.
      expect(r.outcomes.find((o) => o.seq === 479)).toEqual({ seq: 479, ret: 0, out: { size: '0x100000' } });
      // The memlock answer: the old mm's 256 DMA + 16 mlocked pages; the new mm peaks at 256.
      expect(r.memlockRequired().get(PID)!.bytes).toBe(272n * 4096n);
      expect(r.lockedVm().peak.get(PID)).toBe(272);
    });
  }

  it('locked_vm after each event: 256, 272, 0 at exec, 0, 256 for the new map, 256 after the old unmap', () => {
    const { header, events } = parseTraceText(readFileSync(fixture, 'utf8'));
    const r = new Replayer(upstreamDriver, { keepOutcomes: true });
    expect(r.beginSegment(header)).toBeUndefined();
    const after = new Map<number, number>();
    for (const e of events) {
      r.apply(e);
      after.set(e.seq, lockedVm(r, PID));
    }
    expect([473, 474, 475, 476, 477, 478, 479, 480].map((s) => after.get(s))).toEqual([256, 272, 0, 0, 0, 256, 256, 256]);
    expect(codes(r)).toEqual([]);
  });

  it('continues exactly from a state saved at any event, under every design', () => {
    const { header, events } = parseTraceText(readFileSync(fixture, 'utf8'));
    const all = new Map(Object.entries(BACKENDS));
    const summary = (d: DifferentialReplay) =>
      [...d.replayers].map(([n, r]) => [n, [...r.lockedVm().current], [...r.lockedVm().peak], r.vfio!.backends().map((b) => b.snapshot())]);
    const findings = (d: DifferentialReplay, into: string[]) => {
      for (const [n, r] of d.replayers) into.push(...r.takeFindings().map((f) => `${n} ${f.seq}:${f.code}`));
    };
    const whole = new DifferentialReplay(all, 'upstream');
    whole.beginSegment(header);
    const wholeFindings: string[] = [];
    for (const e of events) whole.apply(e);
    findings(whole, wholeFindings);
    for (let cut = 1; cut < events.length; cut++) {
      let d = new DifferentialReplay(all, 'upstream');
      d.beginSegment(header);
      const f: string[] = [];
      events.slice(0, cut).forEach((e) => d.apply(e));
      findings(d, f);
      d = restoreReplay(saveReplay(d));
      d.beginSegment({ ...header, segment: 1, topology: undefined });
      events.slice(cut).forEach((e) => d.apply(e));
      findings(d, f);
      expect([cut, summary(d), f.sort()]).toEqual([cut, summary(whole), [...wholeFindings].sort()]);
    }
  });
});

const VA = 0x7f0000000000n;
/** 1 MiB: 256 pages. */
const SZ = MiB;
const T = {
  topology: {
    groups: [
      { id: 12, devices: ['0000:01:00.0'] },
      { id: 40, mdev_parent: '0000:00:02.0', devices: ['mdev-a'] },
    ],
  },
};
const exec = (pid = 100): Ev => ({ type: 'process', op: 'exec', pid, comm: 'qemu-new' });
const mlock = (vaddr: bigint, size: bigint): Ev => ({ type: 'mlock', pid: 100, vaddr: hx(vaddr), size: hx(size) });

describe('exec: a new mm at locked_vm 0; mappings stay charged to the old one', () => {
  it('drops the mlocked (64) and DMA-charged (256) pages; the old unmap (seq 10) changes nothing, without ACCT_UNDERFLOW', () => {
    // seq: 1-5 setup, 6 map, 7 mlock, 8 exec, 9 map in the new mm, 10 unmap of the old mapping
    const r = run2([...setup(), mapFd(20, 0n, SZ, VA), mlock(VA, 0x40000n), exec(), mapFd(20, SZ, SZ, VA + SZ), unmapFd(20, 0n, SZ)], T);
    expect([retOf(r, 6), retOf(r, 7), retOf(r, 8), retOf(r, 9), retOf(r, 10)]).toEqual([0, 0, 0, 0, 0]);
    expect(r.outcomes.find((o) => o.seq === 10)!.out).toEqual({ size: hx(SZ) });
    expect(lockedVm(r)).toBe(256);
    expect(r.modelEnv!.processes.get(100)!.mlocked).toBe(0);
    expect(r.accounting().get(100)!.peakLockedVm).toBe(320);
    expect(codes(r)).toEqual([]);
  });

  it("checks RLIMIT_MEMLOCK against the new mm: a 256-page limit takes 256 pages again after exec, then refuses one more (ENOMEM)", () => {
    const r = run2([...setup({ limit: SZ }), mapFd(20, 0n, SZ, VA), exec(), mapFd(20, SZ, SZ, VA + SZ), mapFd(20, 2n * SZ, 0x1000n, VA + 2n * SZ)], T);
    expect([retOf(r, 6), retOf(r, 7), retOf(r, 8), retOf(r, 9)]).toEqual([0, 0, 0, -Errno.ENOMEM]);
    expect(lockedVm(r)).toBe(256);
    expect(codes(r)).toEqual(['ACCT_LIMIT']);
  });

  it('external pins: those made before exec are uncharged from nothing, a pin through an old mapping is ENODEV, a new mapping pins and charges the new mm', () => {
    // seq: 1-5 setup (mediated group 40), 6 map, 7 device fd, 8 pin 4, 9 exec, 10 unpin 4, 11 pin old, 12 map new, 13 pin new
    const unpin = (iova: bigint, npage: number): Ev => ({ type: 'unpin', dev: 'mdev-a', iova: hx(iova), npage });
    const r = run2(
      [...setup({ groups: [40] }), mapFd(20, 0n, SZ, VA), getDeviceFd(21, 'mdev-a', 22), pin('mdev-a', 0n, 4), exec(), unpin(0n, 4), pin('mdev-a', 0x10000n, 1), mapFd(20, SZ, SZ, VA + SZ), pin('mdev-a', SZ, 2)],
      T,
    );
    expect([retOf(r, 8), retOf(r, 9), retOf(r, 10), retOf(r, 11), retOf(r, 12), retOf(r, 13)]).toEqual([4, 0, 4, -Errno.ENODEV, 0, 2]);
    expect(lockedVm(r)).toBe(2);
    expect(r.accounting().get(100)!.peakLockedVm).toBe(4);
    expect(codes(r)).toEqual([]);
  });

  it('warns (ACCT_EXEC) of a VADDR update of a mapping whose mm has gone, which stays uncharged', () => {
    const unmapVaddr: Ev = { type: 'ioctl', pid: 100, fd: 20, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: ['VADDR'], iova: '0x0', size: hx(SZ) } };
    const mapVaddr: Ev = { type: 'ioctl', pid: 100, fd: 20, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: ['VADDR'], vaddr: hx(VA + SZ), iova: '0x0', size: hx(SZ) } };
    const r = run2([...setup(), mapFd(20, 0n, SZ, VA), unmapVaddr, exec(), mapVaddr], T);
    expect([retOf(r, 7), retOf(r, 8), retOf(r, 9)]).toEqual([0, 0, 0]);
    expect(lockedVm(r)).toBe(0);
    expect(codes(r)).toEqual(['ACCT_EXEC']);
    expect(r.findings[0]!.details).toEqual({ pid: 100, iova: '0x0', size: hx(SZ), pages: 256 });
  });

  it('loads a state saved before mappings kept their mm: such a mapping charges the task\'s current mm, as before', () => {
    const { header, events } = parseTraceText(readFileSync(fixture, 'utf8'));
    const upToMap = events.filter((e) => e.seq <= 474);
    const d = new DifferentialReplay(new Map([['upstream', BACKENDS.upstream!]]), 'upstream');
    d.beginSegment(header);
    upToMap.forEach((e) => d.apply(e));
    // An older save: no `mm` field on a vfio_dma.
    const saved = JSON.parse(saveReplay(d)) as { nodes: { k: string; f?: Record<string, unknown> }[] };
    let stripped = 0;
    for (const n of saved.nodes) {
      if (n.k === 'o' && n.f && 'iova' in n.f && 'mm' in n.f) {
        delete n.f.mm;
        stripped++;
      }
    }
    expect(stripped).toBe(1);
    const restored = restoreReplay(JSON.stringify(saved));
    restored.beginSegment({ ...header, segment: 1, topology: undefined });
    events.filter((e) => e.seq > 474 && e.seq <= 479).forEach((e) => restored.apply(e));
    const r = restored.replayers.get('upstream')!;
    // The old mapping's unmap (seq 479) takes its 256 pages from the new mm's 256.
    expect(lockedVm(r, PID)).toBe(0);
    expect(r.takeFindings().map((f) => `${f.seq} ${f.code}`)).toEqual(['479 ACCT_MISMATCH']);
  });
});
