/**
 * struct vfio_dma: one user mapping, and struct vfio_pfn: one page of it
 * pinned by a vendor driver through the external pin API.
 */
import type { AddressSpace } from '../memory/address-space.js';
import type { FrameSpan } from '../memory/frame-ledger.js';
import type { Bytes, Iova, Pfn, Vaddr } from '../units.js';
import { VpfnList } from './vpfn-list.js';

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
  /** iova + size, kept so lookups do not compute it. */
  end: bigint;
  /** IOMMU_READ | IOMMU_WRITE. */
  prot: number;
  /** capable(CAP_IPC_LOCK) at MAP time: the limit is not enforced. */
  lockCap: boolean;
  /** The task (group leader) that mapped. */
  pid: number;
  /**
   * vfio_dma->mm: the mm that mapped (mmgrab in vfio_dma_do_map). Every
   * charge and uncharge of this mapping, its external pins' included, goes
   * to it; once it has gone (exec, exit) they change nothing
   * (vfio_lock_acct's mmget_not_zero fails). Upstream commit 046eca5018f8
   * "vfio/type1: Prevent underflow of locked_vm via exec()" (v6.2,
   * backported to 6.1.y stable: Debian's 6.1.0-57 does this). Absent in
   * states saved before it was kept: the task's current mm.
   */
  mm: AddressSpace | undefined;
  iommuMapped: boolean;
  vaddrInvalid: boolean;
  /** Pinned frames while iommuMapped, sorted by offset. */
  runs: DmaRun[];
  /** pfn_list: externally pinned pages by iova. */
  vpfns: VpfnList;
  /** Pages of this mapping charged to the task's locked_vm for the IOMMU mapping. */
  chargedDirect: number;
  /** Pages of this mapping charged to the task's locked_vm for external pins. */
  chargedPins: number;
  /** The trace event that created it. */
  seq: number;
}

export function dmaEnd(d: VfioDma): bigint {
  return d.end;
}

export function newDma(fields: Pick<VfioDma, 'iova' | 'vaddr' | 'size' | 'prot' | 'lockCap' | 'pid' | 'mm' | 'seq'>): VfioDma {
  // An explicit literal: one object shape for every vfio_dma.
  return {
    iova: fields.iova,
    vaddr: fields.vaddr,
    size: fields.size,
    end: fields.iova + fields.size,
    prot: fields.prot,
    lockCap: fields.lockCap,
    pid: fields.pid,
    mm: fields.mm,
    iommuMapped: false,
    vaddrInvalid: false,
    runs: [],
    vpfns: new VpfnList(),
    chargedDirect: 0,
    chargedPins: 0,
    seq: fields.seq,
  };
}

export function dmaCharged(d: VfioDma): number {
  return d.chargedDirect + d.chargedPins;
}

/** Pages of the mapping's pinned runs that are charged (not reserved). */
export function chargeablePages(d: VfioDma): number {
  let n = 0;
  for (const r of d.runs) if (!r.reserved) n += r.pages;
  return n;
}

/** The frames of the non-reserved runs. */
export function runSpans(runs: readonly DmaRun[]): FrameSpan[] {
  const out: FrameSpan[] = [];
  for (const r of runs) if (!r.reserved) out.push({ pfn: r.pfn, pages: r.pages });
  return out;
}

/** The frames of the non-reserved vpfns. */
export function vpfnSpans(d: VfioDma): FrameSpan[] {
  const out: FrameSpan[] = [];
  for (const v of d.vpfns.values()) if (!v.reserved) out.push({ pfn: v.pfn, pages: 1 });
  return out;
}

/**
 * The frames of the non-reserved runs except pages already held as vpfns
 * (vfio_pin_pages_remote: externally pinned pages are already charged).
 */
export function runSpansExceptVpfns(d: VfioDma, runs: readonly DmaRun[], pageShift: bigint): FrameSpan[] {
  if (d.vpfns.size === 0) return runSpans(runs);
  const pinnedOffsets: number[] = [];
  for (const at of d.vpfns.keys()) pinnedOffsets.push(Number((at - d.iova) >> pageShift));
  pinnedOffsets.sort((a, b) => a - b);
  const out: FrameSpan[] = [];
  for (const r of runs) {
    if (r.reserved) continue;
    let cursor = r.offset;
    const end = r.offset + r.pages;
    for (const off of pinnedOffsets) {
      if (off < cursor || off >= end) continue;
      if (off > cursor) out.push({ pfn: r.pfn + BigInt(cursor - r.offset), pages: off - cursor });
      cursor = off + 1;
    }
    if (cursor < end) out.push({ pfn: r.pfn + BigInt(cursor - r.offset), pages: end - cursor });
  }
  return out;
}
