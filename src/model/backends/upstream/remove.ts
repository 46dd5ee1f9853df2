/**
 * vfio_remove_dma and vfio_iommu_unmap_unpin_all: unmap, unpin, uncharge
 * and unlink a mapping.
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
