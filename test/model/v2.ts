/** Builders for version 2 traces: the events of the contract, each test reading as the trace it replays. */
import { upstreamDriver } from '../../src/model/backends/upstream/index.js';
import { replayText } from '../../src/model/replay/replay-text.js';
import type { Replayer } from '../../src/model/replay/replayer.js';
import { type Ev, hx, trace } from '../helpers.js';

export const V2 = { version: 2 };

export function run2(events: Ev[], header: Ev = {}, kernel?: string): Replayer {
  return replayText(trace(events, { ...V2, ...header }), upstreamDriver, kernel === undefined ? {} : { kernel });
}

/** Private anonymous RAM as QEMU allocates it: read/write, never written yet. */
export function ram(vaddr: bigint, size: bigint, pid = 100, extra: string[] = []): Ev {
  return { type: 'mmap', pid, vaddr: hx(vaddr), size: hx(size), backing: 'anon', prot: ['READ', 'WRITE'], flags: ['PRIVATE', 'ANONYMOUS', ...extra] };
}

export function mapFd(fd: number, iova: bigint, size: bigint, vaddr: bigint, pid = 100, flags = ['READ', 'WRITE']): Ev {
  return { type: 'ioctl', pid, fd, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags, vaddr: hx(vaddr), iova: hx(iova), size: hx(size) } };
}

export function unmapFd(fd: number, iova: bigint, size: bigint, pid = 100): Ev {
  return { type: 'ioctl', pid, fd, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: [], iova: hx(iova), size: hx(size) } };
}

export const close = (fd: number, pid = 100): Ev => ({ type: 'close', pid, fd });
export const dup = (fd: number, newfd: number, call: string, pid = 100): Ev => ({ type: 'dup', pid, fd, newfd, call });
export const fork = (child: number, parent = 100): Ev => ({ type: 'process', op: 'fork', pid: child, parent });
export const exit = (pid = 100): Ev => ({ type: 'process', op: 'exit', pid });
export const getDeviceFd = (groupFd: number, dev: string, ret: number, pid = 100): Ev => ({
  type: 'ioctl',
  pid,
  fd: groupFd,
  cmd: 'VFIO_GROUP_GET_DEVICE_FD',
  arg: dev,
  ret,
});
export const pin = (dev: string, iova: bigint, npage: number, prot = ['READ', 'WRITE']): Ev => ({ type: 'pin', dev, iova: hx(iova), npage, prot });
