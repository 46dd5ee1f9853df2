/**
 * vfio_remove_dma, vfio_iommu_unmap_unpin_all and vfio_iommu_type1_release:
 * unmap, unpin, uncharge and unlink mappings.
 */
import { unmapUnpin } from '../../type1/pin.js';
import type { VfioDma } from '../../type1/vfio-dma.js';
import type { VfioIommu } from '../../type1/vfio-iommu.js';

export function removeDma(iommu: VfioIommu, dma: VfioDma): void {
  iommu.unchargeAll(dma, unmapUnpin(iommu.domains, dma));
  iommu.reportOrphanedCharge(dma);
  iommu.dmaList.unlink(dma);
  if (dma.vaddrInvalid) iommu.vaddrInvalidCount--;
  iommu.dmaAvail++;
}

export function removeAllDmas(iommu: VfioIommu): void {
  for (const dma of [...iommu.dmaList.all()]) removeDma(iommu, dma);
}

/** vfio_iommu_type1_release: the emulated groups forgotten, every mapping removed, the domains freed. */
export function releaseAll(iommu: VfioIommu): void {
  iommu.emulatedGroups = [];
  removeAllDmas(iommu);
  iommu.domains = [];
}
