/**
 * struct vfio_dma: one user mapping, and struct vfio_pfn: one page of it
 * pinned by a vendor driver through the external pin API.
 */
import type { Bytes, Iova, Pfn, Vaddr } from '../units.js';

/** Frames pinned for an IOMMU-mapped vfio_dma, as extents. */
export interface DmaRun {
  /** Offset of the run from dma.iova, in pages. */
  offset: number;
  pages: number;
  pfn: Pfn;
  reserved: boolean;
}

/** struct vfio_pfn, keyed by iova in VfioDma.vpfns. */
export interface Vpfn {
  pfn: Pfn;
  refCount: number;
  reserved: boolean;
}

export interface VfioDma {
  iova: Iova;
  vaddr: Vaddr;
  size: Bytes;
  /** IOMMU_READ | IOMMU_WRITE. */
  prot: number;
  /** capable(CAP_IPC_LOCK) at MAP time: the limit is not enforced. */
  lockCap: boolean;
  /** The task (group leader) whose mm is charged. */
  pid: number;
  iommuMapped: boolean;
  vaddrInvalid: boolean;
  /** Pinned frames while iommuMapped, sorted by offset. */
  runs: DmaRun[];
  /** pfn_list: externally pinned pages by iova. */
  vpfns: Map<bigint, Vpfn>;
  /** Pages of this mapping charged to the task's locked_vm. */
  charged: number;
  /** The trace event that created it. */
  seq: number;
}

export function dmaEnd(d: VfioDma): bigint {
  return d.iova + d.size;
}

export function newDma(fields: Pick<VfioDma, 'iova' | 'vaddr' | 'size' | 'prot' | 'lockCap' | 'pid' | 'seq'>): VfioDma {
  return { ...fields, iommuMapped: false, vaddrInvalid: false, runs: [], vpfns: new Map(), charged: 0 };
}

/** Pages of the mapping's pinned runs that are charged (not reserved). */
export function chargeablePages(d: VfioDma): number {
  let n = 0;
  for (const r of d.runs) if (!r.reserved) n += r.pages;
  return n;
}
