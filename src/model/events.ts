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
  /** The process; for `fork`, the child. */
  pid: number;
  /** fork and exec: version 2. */
  op: 'start' | 'setrlimit' | 'exit' | 'fork' | 'exec';
  /** fork: the parent's pid. */
  parent?: number;
  memlockLimit?: MemlockLimit;
  capIpcLock?: boolean;
  comm?: string;
}

/** `file` (version 2): pages of a regular file. */
export type Backing = 'anon' | 'hugetlb' | 'shared' | 'pfnmap' | 'file';

/** PROT_* of a mapping (version 2). */
export interface MmapProt {
  read: boolean;
  write: boolean;
  exec: boolean;
}

/** MAP_* flags of a mapping (version 2), as the trace names them. */
export type MmapFlag = 'SHARED' | 'PRIVATE' | 'ANONYMOUS' | 'FIXED' | 'HUGETLB' | 'NORESERVE' | 'POPULATE' | 'LOCKED';

export interface MmapEvent extends EventBase {
  type: 'mmap';
  pid: number;
  vaddr: Vaddr;
  size: Bytes;
  backing: Backing;
  pfn?: Pfn;
  hugepageSize?: Bytes;
  /** Version 2; absent when the trace does not say. */
  prot?: MmapProt;
  /** Version 2; absent when the trace does not say. */
  flags?: readonly MmapFlag[];
  /** Version 2: the mapped file's fd (a VFIO device fd for a BAR). */
  fd?: number;
  offset?: Bytes;
}

/** mlock / mlock2 (version 2). */
export interface MlockEvent extends EventBase {
  type: 'mlock';
  pid: number;
  vaddr: Vaddr;
  size: Bytes;
  /** MLOCK_ONFAULT: locked but not populated. */
  onFault: boolean;
}

export interface MunlockEvent extends EventBase {
  type: 'munlock';
  pid: number;
  vaddr: Vaddr;
  size: Bytes;
}

/** mlockall (version 2). */
export interface MlockallEvent extends EventBase {
  type: 'mlockall';
  pid: number;
  current: boolean;
  future: boolean;
  onFault: boolean;
  /** Pages the call newly locked as the capture measured (memory the trace does not describe included). */
  pages?: Pages;
}

export interface MunlockallEvent extends EventBase {
  type: 'munlockall';
  pid: number;
}

/** dup, dup2, dup3 or fcntl(F_DUPFD) of a file descriptor (version 2). */
export interface DupEvent extends EventBase {
  type: 'dup';
  pid: number;
  fd: number;
  newfd: number;
  call: 'dup' | 'dup2' | 'dup3' | 'fcntl';
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
  /** Version 2: opens the named device of the group; the new fd is the event's `ret`. */
  | { cmd: 'VFIO_GROUP_GET_DEVICE_FD'; device: string }
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
  pid?: number;
  fd?: number;
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
  | MlockEvent
  | MunlockEvent
  | MlockallEvent
  | MunlockallEvent
  | DupEvent
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

/** A process the capture attached to while it ran (version 2). */
export interface AttachedProcess {
  pid: number;
  comm?: string;
}

export interface TraceHeader {
  /** The format version of the segment: 1, or 2 for the events and fields of version 2. */
  version: 1 | 2;
  traceId: string;
  segment: number;
  pageSize: number;
  arch: string;
  kernel?: string;
  host?: string;
  moduleParams: ModuleParams;
  /** The guest's memory (bytes) as libvirt counts it, when the capture knows it (pinledger's extension). */
  guestMemory?: Bytes;
  /** Processes the capture attached to: what they did before is not in the trace. */
  attached?: AttachedProcess[];
  /** Absent when a segment N > 0 keeps segment N-1's topology. */
  topology?: { iommus: IommuUnitSpec[]; groups: GroupSpec[] };
}

export const DEFAULT_MODULE_PARAMS: ModuleParams = {
  dmaEntryLimit: 65535,
  allowUnsafeInterrupts: false,
  disableHugepages: false,
};
