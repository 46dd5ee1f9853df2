/**
 * The memlock answer is a what-if: the peak locked_vm of the same trace with
 * RLIMIT_MEMLOCK unlimited, where every operation the limit refused
 * succeeds and everything after it runs on that state.
 */
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../../src/model/backends/index.js';
import { parseTraceText } from '../../src/trace/line-parser.js';
import { DifferentialReplay } from '../../src/model/replay/differential.js';
import { replayText } from '../../src/model/replay/replay-text.js';
import { restoreReplay, saveReplay } from '../../src/model/state/snapshot.js';
import { type Ev, GiB, MiB, hx, trace } from '../helpers.js';

const PID = 100;
const V = 0x7f0000000000n;
const LIMIT = 64n * MiB; // 16384 pages

function mapOn(fd: number, iova: bigint, size: bigint, vaddr: bigint): Ev {
  return { type: 'ioctl', pid: PID, fd, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: ['READ', 'WRITE'], vaddr: hx(vaddr), iova: hx(iova), size: hx(size) } };
}
function unmapOn(fd: number, iova: bigint, size: bigint): Ev {
  return { type: 'ioctl', pid: PID, fd, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: [], iova: hx(iova), size: hx(size) } };
}
function container(fd: number, groupFd: number, group: number): Ev[] {
  return [
    { type: 'open', pid: PID, fd, path: '/dev/vfio/vfio' },
    { type: 'open', pid: PID, fd: groupFd, path: `/dev/vfio/${group}` },
    { type: 'ioctl', pid: PID, fd: groupFd, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: fd } },
    { type: 'ioctl', pid: PID, fd, cmd: 'VFIO_SET_IOMMU', arg: 'VFIO_TYPE1v2_IOMMU' },
  ];
}

/**
 * Container A (fd 20) maps 1 MiB, then 2 GiB, which the 64 MiB limit
 * refuses (seq 7), and unmaps that 2 GiB (seq 8: nothing to unmap under the
 * limit, the whole 2 GiB in the what-if). Container B (fd 30) maps the same
 * 2 GiB of memory (seq 13: refused again under the limit) and the same
 * first 1 MiB (seq 14: frames A already charged, charged again).
 */
const events: Ev[] = [
  { type: 'process', pid: PID, op: 'start', memlock_limit: hx(LIMIT), cap_ipc_lock: false },
  ...container(20, 21, 12),
  mapOn(20, 0n, MiB, V), // seq 6
  mapOn(20, MiB, 2n * GiB, V + MiB), // seq 7: refused
  unmapOn(20, MiB, 2n * GiB), // seq 8
  ...container(30, 31, 13),
  mapOn(30, MiB, 2n * GiB, V + MiB), // seq 13: refused
  mapOn(30, 0n, MiB, V), // seq 14
];
const text = trace(events);

describe('Replayer.accounting what-if', () => {
  for (const [name, driver] of Object.entries(BACKENDS)) {
    it(`${name}: a refused map later unmapped, and a second container mapping the same memory`, () => {
      const r = replayText(text, driver);
      const ret = (seq: number) => r.outcomes.find((o) => o.seq === seq)!;
      expect(ret(7).ret).toBe(-12);
      // Nothing to unmap under the limit: type1 unmaps 0 bytes, iommufd says ENOENT.
      expect(ret(8)).toEqual(name === 'iommufd-compat' ? { seq: 8, ret: -2 } : { seq: 8, ret: 0, out: { size: '0x0' } });
      expect(ret(13).ret).toBe(-12);
      expect(ret(14).ret).toBe(0);
      const a = r.accounting().get(PID)!;
      // Under the limit: 256 pages through A, the same 256 frames again through B.
      expect(a.peakLockedVm).toBe(512);
      expect(a.finalLockedVm).toBe(512);
      // With no limit: 256 + 524288 through A until seq 8 unmaps the 2 GiB
      // (524544 pages), then B maps it again (524544) and the first 1 MiB
      // again (524800, of which 256 are frames charged twice).
      expect(a.requiredPages).toBe(524800);
      expect(r.memlockRequired().get(PID)!.bytes).toBe(524800n * 4096n);
      expect(a.breakdown).toEqual({ direct: 524800, pins: 0, shared: 256 });
      expect(a.limit).toBe(LIMIT);
      expect(a.refusals).toEqual({ count: 2, firstSeq: 7, firstEvent: 'VFIO_IOMMU_MAP_DMA', limit: LIMIT, capIpcLock: false });
      expect(a.vfioContainers).toBe(2);
      // The what-if's own findings never reach the trace's.
      expect(r.findings.map((f) => `${f.seq}:${f.code}`)).toEqual(['7:ACCT_LIMIT', '13:ACCT_LIMIT', '14:ACCT_SHARED_FRAMES']);
    });
  }

  it('a trace the limit never refused answers its own peak, with no fork', () => {
    const r = replayText(trace([...events.slice(0, 6), { type: 'close', pid: PID, fd: 21 }]), BACKENDS.upstream!);
    const a = r.accounting().get(PID)!;
    expect(a).toMatchObject({ peakLockedVm: 256, requiredPages: 256, refusals: undefined, limit: LIMIT });
    expect((r as unknown as { whatIf: unknown }).whatIf).toBeUndefined();
  });

  it('CAP_IPC_LOCK: no limit applies and nothing is refused', () => {
    const capped = events.map((e, i) => (i === 0 ? { ...e, cap_ipc_lock: true } : e));
    const a = replayText(trace(capped), BACKENDS.upstream!).accounting().get(PID)!;
    expect(a).toMatchObject({ peakLockedVm: 524800, requiredPages: 524800, capIpcLock: true, refusals: undefined });
  });

  it('a vendor driver pin refused by the limit: the what-if pins every page', () => {
    const mdev = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
    const header = { topology: { iommus: [], groups: [{ id: 40, mdev_parent: '0000:00:02.0', devices: [mdev] }] } };
    const t = trace(
      [
        { type: 'process', pid: PID, op: 'start', memlock_limit: hx(16n * 4096n), cap_ipc_lock: false },
        ...container(20, 21, 40),
        mapOn(20, 0n, GiB, V),
        { type: 'device', dev: mdev, op: 'open' },
        { type: 'pin', dev: mdev, iova: '0x0', npage: 8, prot: ['READ', 'WRITE'] }, // seq 8: 8 pages
        { type: 'pin', dev: mdev, iova: '0x100000', npage: 16, prot: ['READ', 'WRITE'] }, // seq 9: 8 + 16 > 16, refused
        { type: 'unpin', dev: mdev, iova: '0x0', npage: 8 }, // seq 10
      ],
      header,
    );
    const r = replayText(t, BACKENDS.upstream!);
    expect(r.outcomes.find((o) => o.seq === 9)!.ret).toBe(-12);
    const a = r.accounting().get(PID)!;
    // vfio_iommu_type1_pin_pages charges page by page up to the limit (8 + 8)
    // and unwinds at the 17th: between events the peak is 8.
    expect(a.peakLockedVm).toBe(8);
    expect(a.requiredPages).toBe(24);
    expect(a.breakdown).toEqual({ direct: 0, pins: 24, shared: 0 });
    expect(a.refusals).toMatchObject({ count: 1, firstSeq: 9, firstEvent: 'pin' });
    expect(a.finalLockedVm).toBe(0);
  });

  it('continues across segments through a saved state, exactly as in one pass', () => {
    const all = new Map(Object.entries(BACKENDS));
    const { header, events: evs } = parseTraceText(text);
    const whole = new DifferentialReplay(all, 'upstream');
    whole.beginSegment(header);
    for (const e of evs) whole.apply(e);
    let d = new DifferentialReplay(all, 'upstream');
    d.beginSegment(header);
    for (const e of evs.slice(0, 9)) d.apply(e); // the fork happened at seq 7
    d = restoreReplay(saveReplay(d));
    d.beginSegment({ ...header, segment: 1 });
    for (const e of evs.slice(9)) d.apply(e);
    for (const name of all.keys()) {
      expect(d.replayers.get(name)!.accounting()).toEqual(whole.replayers.get(name)!.accounting());
      expect(d.replayers.get(name)!.accounting().get(PID)!.requiredPages).toBe(524800);
    }
  });
});
