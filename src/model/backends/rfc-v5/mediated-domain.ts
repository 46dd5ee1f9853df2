/**
 * The 2016 RFC's mediated domain (v5 of "VFIO Type1 IOMMU: Add support for
 * mediated devices", ../shared/background/): a vfio_domain with no IOMMU,
 * beside the container's IOMMU domains, holding the mediated groups and a
 * list of pinned host frames keyed by pfn with a reference count.
 */
import type { GroupSpec } from '../../events.js';
import type { Pfn } from '../../units.js';
import type { ChargeOwner } from '../../env.js';
import type { AddressSpace } from '../../memory/address-space.js';

export interface PinnedFrame {
  pfn: Pfn;
  refCount: number;
  reserved: boolean;
  /** The task whose locked_vm each pin of this frame charged. */
  pid: number;
  /** The mm charged: the one of the mapping first pinned through (absent in older saved states: the task's current mm). */
  mm: AddressSpace | undefined;
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
  /** References to non-reserved frames in pfnList: what the pin calls must have charged. */
  chargeableRefs = 0;

  /** One more reference to a frame, listing it on its first. */
  addRef(pfn: Pfn, reserved: boolean, owner: ChargeOwner): void {
    const f = this.pfnList.get(pfn);
    if (f) f.refCount++;
    else this.pfnList.set(pfn, { pfn, refCount: 1, reserved, pid: owner.pid, mm: owner.mm });
    if (!reserved) this.chargeableRefs++;
  }

  /** One reference fewer, unlisting the frame on its last. */
  dropRef(f: PinnedFrame): void {
    f.refCount--;
    if (f.refCount === 0) this.pfnList.delete(f.pfn);
    if (!f.reserved) this.chargeableRefs--;
  }

  /** Every frame unlisted and every pin forgotten. */
  clear(): void {
    this.pfnList.clear();
    this.pins.clear();
    this.chargeableRefs = 0;
  }
}
