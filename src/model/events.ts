/**
 * The events the model replays: the vfio-trace format (TRACE-FORMAT.md)
 * after validation, with every 64-bit field held exactly. src/trace builds
 * these from JSON; tests may build them directly.
 */
import type { Bytes, Iova, Pages, Pfn, Vaddr } from './units.js';

export interface Observed {
  /** What the traced system returned: 0, a count, or a negative errno. */
  ret?: number;
  /** Output fields the kernel wrote back, as written in the trace. */
  out?: Record<string, unknown>;
  /** VmLck of the event's process just after the event, in pages. */
  lockedVm?: Pages;
}

interface EventBase {
  seq: number;
  /** 1-based line number in the segment file, for messages. */
  line: number;
  observed: Observed;
}

export type MemlockLimit = Bytes | 'unlimited';

export interface ProcessEvent extends EventBase {
  type: 'process';
  pid: number;
  op: 'start' | 'setrlimit' | 'exit';
  memlockLimit?: MemlockLimit;
  capIpcLock?: boolean;
  comm?: string;
}

export type Backing = 'anon' | 'hugetlb' | 'shared' | 'pfnmap';

export interface MmapEvent extends EventBase {
  type: 'mmap';
  pid: number;
  vaddr: Vaddr;
  size: Bytes;
  backing: Backing;
  pfn?: Pfn;
  hugepageSize?: Bytes;
}

export interface MunmapEvent extends EventBase {
  type: 'munmap';
  pid: number;
  vaddr: Vaddr;
  size: Bytes;
}

export interface OpenEvent extends EventBase {
  type: 'open';
  pid: number;
  fd: number;
  path: string;
}

export interface CloseEvent extends EventBase {
  type: 'close';
  pid: number;
  fd: number;
}

export interface MapDmaArg {
  argsz?: number;
  flags: string[];
  vaddr: Vaddr;
  iova: Iova;
  size: Bytes;
}

export interface UnmapDmaArg {
  argsz?: number;
  flags: string[];
  iova: Iova;
  size: Bytes;
}

export type IoctlCall =
  | { cmd: 'VFIO_GET_API_VERSION' }
  | { cmd: 'VFIO_CHECK_EXTENSION'; extension: string }
  | { cmd: 'VFIO_SET_IOMMU'; iommuType: string }
  | { cmd: 'VFIO_GROUP_GET_STATUS' }
  | { cmd: 'VFIO_GROUP_SET_CONTAINER'; containerFd: number }
  | { cmd: 'VFIO_GROUP_UNSET_CONTAINER' }
  | { cmd: 'VFIO_IOMMU_GET_INFO' }
  | ({ cmd: 'VFIO_IOMMU_MAP_DMA' } & MapDmaArg)
  | ({ cmd: 'VFIO_IOMMU_UNMAP_DMA' } & UnmapDmaArg)
  | { cmd: 'VFIO_IOMMU_DIRTY_PAGES'; flags: string[] }
  | { cmd: 'unknown'; name: string };

export interface IoctlEvent extends EventBase {
  type: 'ioctl';
  pid: number;
  fd: number;
  call: IoctlCall;
}

export interface DeviceEvent extends EventBase {
  type: 'device';
  dev: string;
  op: 'open' | 'close';
}

/** Pages named by a pin/unpin: a contiguous run or the older list form. */
export type PageList =
  | { kind: 'run'; iova: Iova; npage: number }
  | { kind: 'list'; iovas: Iova[] };

export interface PinEvent extends EventBase {
  type: 'pin';
  dev: string;
  pages: PageList;
  prot: { read: boolean; write: boolean };
}

export interface UnpinEvent extends EventBase {
  type: 'unpin';
  dev: string;
  pages: PageList;
}

export interface DmaUnmapNotifyEvent extends EventBase {
  type: 'dma_unmap_notify';
  dev: string;
  iova: Iova;
  size: Bytes;
}

export type TraceEvent =
  | ProcessEvent
  | MmapEvent
  | MunmapEvent
  | OpenEvent
  | CloseEvent
  | IoctlEvent
  | DeviceEvent
  | PinEvent
  | UnpinEvent
  | DmaUnmapNotifyEvent;

/** The header's topology after defaults are applied. */
export interface IommuUnitSpec {
  id: string;
  pgsizeBitmap: bigint;
  cacheCoherent: boolean;
  interruptRemapping: boolean;
  /** Inclusive. */
  aperture: { start: Iova; end: Iova };
  /** Inclusive windows. */
  reserved: { start: Iova; end: Iova; type: string }[];
}

export type GroupSpec =
  | { kind: 'iommu'; id: number; iommu: string; devices: string[] }
  | { kind: 'mdev'; id: number; mdevParent: string; devices: string[] };

export interface ModuleParams {
  dmaEntryLimit: number;
  allowUnsafeInterrupts: boolean;
  disableHugepages: boolean;
}

export interface TraceHeader {
  traceId: string;
  segment: number;
  pageSize: number;
  arch: string;
  kernel?: string;
  host?: string;
  moduleParams: ModuleParams;
  /** The guest's memory (bytes) as libvirt counts it, when the capture knows it (pinledger's extension). */
  guestMemory?: Bytes;
  /** Absent when a segment N > 0 keeps segment N-1's topology. */
  topology?: { iommus: IommuUnitSpec[]; groups: GroupSpec[] };
}

export const DEFAULT_MODULE_PARAMS: ModuleParams = {
  dmaEntryLimit: 65535,
  allowUnsafeInterrupts: false,
  disableHugepages: false,
};
