/**
 * The seam between the VFIO core (containers, groups, fds: container.c,
 * group.c) and an IOMMU backend design, after struct vfio_iommu_driver_ops.
 * Each design (upstream type1, the 2016 RFC, iommufd's compatibility) is a
 * driver; the core never asks which one it has.
 */
import type { GroupSpec, IoctlCall, PageList } from '../events.js';
import type { ModelEnv } from '../env.js';

export interface IoctlResult {
  /** 0, a count, or a negative errno. */
  ret: number;
  /** Fields written back on success. */
  out?: Record<string, unknown>;
  /** The IOVA range the call changed, when narrower than its arguments say. */
  touched?: { start: bigint; size: bigint };
  /** Ranges whose external pins the backend dropped although no driver unpinned them. */
  forcedUnpins?: { start: bigint; size: bigint }[];
}

/** What a backend holds, for invariants, `state` and tests. */
export interface BackendSnapshot {
  design: string;
  v2: boolean;
  dmaAvail: number;
  pgsizeBitmap: bigint;
  iovaRanges: { start: bigint; end: bigint }[];
  domains: { id: number; unit: string; groups: number[]; cacheCoherent: boolean; mappedPages: number; entries: number }[];
  emulatedGroups: number[];
  dmas: {
    iova: bigint;
    vaddr: bigint;
    size: bigint;
    prot: number;
    pid: number;
    iommuMapped: boolean;
    charged: number;
    vpfns: number;
  }[];
}

/** One container's backend instance (the kernel's iommu_data). */
export interface IommuBackend {
  /** Container ioctls passed through by the core (vfio_fops_unl_ioctl default case). */
  ioctl(pid: number, seq: number, call: IoctlCall): IoctlResult;
  /** attach_group: 0 or a negative errno, the backend unchanged on failure. */
  attachGroup(pid: number, group: GroupSpec): number;
  detachGroup(group: GroupSpec): void;
  /** release: everything unmapped, unpinned and uncharged. */
  release(): void;
  /** vfio_pin_pages through this container: pages pinned or a negative errno. */
  pinPages(group: GroupSpec, pages: PageList, prot: { read: boolean; write: boolean }): number;
  /** vfio_unpin_pages: pages unpinned or a negative errno. */
  unpinPages(group: GroupSpec, pages: PageList): number;
  /** Pids charged by this container's mappings. */
  chargedPids(): Set<number>;
  /** Pages this container has charged to `pid`'s current mm. */
  chargedTo(pid: number): number;
  /** `pid`'s mm has gone (exec, exit): what this container charged to it went with it. */
  mmGone(pid: number): void;
  /** Checks the backend's own invariants over a range of IOVA (all when omitted). */
  checkInvariants(range?: { start: bigint; size: bigint }): void;
  /** vfio_dma entries the container holds (its dma_list's size), without building a snapshot. */
  mappings(): number;
  snapshot(): BackendSnapshot;
}

/** A registered backend driver (vfio_register_iommu_driver). */
export interface IommuDriver {
  readonly name: string;
  /** driver->ops->ioctl(NULL, VFIO_CHECK_EXTENSION, ext): before any container uses it. */
  checkExtension(ext: string): number;
  /** driver->ops->open(arg): a backend instance, or a negative errno. */
  open(env: ModelEnv, iommuType: string): IommuBackend | number;
}
