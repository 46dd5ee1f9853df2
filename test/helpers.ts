/** Builders for trace strings, so each test reads as the trace it replays. */
import { upstreamDriver } from '../src/model/backends/upstream/index.js';
import type { Replayer } from '../src/model/replay/replayer.js';
import { replayText } from '../src/model/replay/replay-text.js';

export type Ev = Record<string, unknown>;

export const MiB = 1n << 20n;
export const GiB = 1n << 30n;
export const TiB = 1n << 40n;
export const hx = (v: bigint | number): string => '0x' + BigInt(v).toString(16);

export function trace(events: Ev[], header: Ev = {}): string {
  const h = { type: 'header', format: 'vfio-trace', version: 1, trace_id: 't', page_size: 4096, ...header };
  let seq = 0;
  return [h, ...events.map((e) => ({ seq: ++seq, ...e }))].map((o) => JSON.stringify(o)).join('\n') + '\n';
}

/** A process with a container (fd 20) holding group 12 (fd 21), type1v2 set. */
export function setup(opts: { pid?: number; limit?: bigint | 'unlimited'; cap?: boolean; v1?: boolean; groups?: number[] } = {}): Ev[] {
  const pid = opts.pid ?? 100;
  const groups = opts.groups ?? [12];
  const evs: Ev[] = [
    {
      type: 'process',
      pid,
      op: 'start',
      memlock_limit: opts.limit === undefined ? 'unlimited' : opts.limit === 'unlimited' ? 'unlimited' : hx(opts.limit),
      cap_ipc_lock: opts.cap ?? false,
    },
    { type: 'open', pid, fd: 20, path: '/dev/vfio/vfio' },
  ];
  groups.forEach((g, i) => {
    evs.push({ type: 'open', pid, fd: 21 + i, path: `/dev/vfio/${g}` });
    evs.push({ type: 'ioctl', pid, fd: 21 + i, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 20 } });
  });
  evs.push({ type: 'ioctl', pid, fd: 20, cmd: 'VFIO_SET_IOMMU', arg: opts.v1 ? 'VFIO_TYPE1_IOMMU' : 'VFIO_TYPE1v2_IOMMU' });
  return evs;
}

export function map(iova: bigint, size: bigint, vaddr: bigint = 0x7f0000000000n + iova, pid = 100, flags = ['READ', 'WRITE']): Ev {
  return { type: 'ioctl', pid, fd: 20, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags, vaddr: hx(vaddr), iova: hx(iova), size: hx(size) } };
}

export function unmap(iova: bigint, size: bigint, flags: string[] = [], pid = 100): Ev {
  return { type: 'ioctl', pid, fd: 20, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags, iova: hx(iova), size: hx(size) } };
}

export function run(events: Ev[], header: Ev = {}): Replayer {
  return replayText(trace(events, header), upstreamDriver);
}

/** The model's result for the event with this seq. */
export function retOf(r: Replayer, seq: number): number {
  const o = r.outcomes.find((x) => x.seq === seq);
  if (!o) throw new Error(`no outcome for seq ${seq}`);
  return o.ret;
}

export function last(r: Replayer): { ret: number; out?: Record<string, unknown> } {
  const o = r.outcomes[r.outcomes.length - 1];
  if (!o) throw new Error('no outcomes');
  return o;
}

export function lockedVm(r: Replayer, pid = 100): number {
  return r.modelEnv?.processes.get(pid)?.lockedVm ?? 0;
}

export function codes(r: Replayer): string[] {
  return r.findings.map((f) => f.code);
}
