/** A plain-data view of a type1-style container, for `state`, invariants and tests. */
import type { BackendSnapshot } from '../vfio/driver.js';
import type { VfioIommu } from './vfio-iommu.js';
import { dmaCharged } from './vfio-dma.js';

export function snapshotType1(design: string, iommu: VfioIommu): BackendSnapshot {
  return {
    design,
    v2: iommu.v2,
    dmaAvail: iommu.dmaAvail,
    pgsizeBitmap: iommu.pgsizeBitmap,
    iovaRanges: iommu.iovaList.map((r) => ({ start: r.start, end: r.end })),
    domains: iommu.domains.map((d) => ({
      id: d.id,
      unit: d.unit.id,
      groups: [...d.groups],
      cacheCoherent: d.prot !== 0,
      mappedPages: d.pt.totalPages,
      entries: d.pt.size,
    })),
    emulatedGroups: iommu.emulatedGroups.map((g) => g.id),
    dmas: iommu.dmaList.all().map((d) => ({
      iova: d.iova,
      vaddr: d.vaddr,
      size: d.size,
      prot: d.prot,
      pid: d.pid,
      iommuMapped: d.iommuMapped,
      charged: dmaCharged(d),
      vpfns: d.vpfns.size,
    })),
  };
}
