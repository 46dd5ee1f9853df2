/**
 * The 2016 RFC's mediated domain (v5 of "VFIO Type1 IOMMU: Add support for
 * mediated devices", ../shared/background/): a vfio_domain with no IOMMU,
 * beside the container's IOMMU domains, holding the mediated groups and a
 * list of pinned host frames keyed by pfn with a reference count.
 */
import type { GroupSpec } from '../../events.js';
import type { Pfn } from '../../units.js';

export interface PinnedFrame {
  pfn: Pfn;
  refCount: number;
  reserved: boolean;
  /** The task whose locked_vm each pin of this frame charged. */
  pid: number;
}

/** One pinned page as the vendor driver knows it: its IOVA and the frame returned. */
export interface PinRecord {
  pfn: Pfn;
  /** Pins of this IOVA not yet unpinned. */
  count: number;
  /** Already reported as outliving its mapping. */
  orphanReported: boolean;
}

export class MediatedDomain {
  readonly groups: GroupSpec[] = [];
  /** pfn_list: pinned host frames. */
  readonly pfnList = new Map<bigint, PinnedFrame>();
  /** What the vendor drivers hold, by IOVA: how unpin finds the pfn it passes back. */
  readonly pins = new Map<bigint, PinRecord>();
  /** Pages charged per pid by pin calls. */
  readonly chargedByPid = new Map<number, number>();
}
