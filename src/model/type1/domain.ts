/**
 * struct vfio_domain: an IOMMU domain with its page table and the groups
 * attached to it.
 */
import type { IommuUnitSpec } from '../events.js';
import { PageTable } from '../iommu/page-table.js';

export class Domain {
  readonly groups: number[] = [];
  readonly pt: PageTable;

  constructor(
    readonly id: number,
    /** The unit whose driver allocated it; compatibility compares prot. */
    readonly unit: IommuUnitSpec,
    /** IOMMU_CACHE when the unit enforces cache coherency. */
    readonly prot: number,
    pageShift: bigint,
  ) {
    this.pt = new PageTable(pageShift);
  }
}
