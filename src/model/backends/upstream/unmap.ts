/**
 * VFIO_IOMMU_UNMAP_DMA: vfio_iommu_type1_unmap_dma and vfio_dma_do_unmap
 * (Linux 6.1: the 5.19 rule that another mm's mapping stops the walk is
 * gone).
 */
import { Errno } from '../../errno.js';
import type { UnmapDmaArg } from '../../events.js';
import type { VfioIommu } from '../../type1/vfio-iommu.js';
import { U64_MAX, hex } from '../../units.js';
import type { IoctlResult } from '../../vfio/driver.js';
import { removeDma } from './remove.js';
import type { VfioDma } from '../../type1/vfio-dma.js';

const UNMAP_FLAGS = new Set(['ALL', 'VADDR', 'GET_DIRTY_BITMAP']);
/** offsetofend(struct vfio_iommu_type1_dma_unmap, size). */
const UNMAP_MINSZ = 24;

/**
 * What the design does with a mapping that still has external pins when an
 * unmap reaches it. Upstream notifies the vendor drivers and retries; the
 * trace already holds the driver's unpins, so pins left here mean the
 * driver ignored the notification.
 */
export type OutstandingPins = (iommu: VfioIommu, dma: VfioDma) => void;

export function unmapDma(iommu: VfioIommu, arg: UnmapDmaArg, onPins: OutstandingPins): IoctlResult {
  if (
    (arg.argsz !== undefined && arg.argsz < UNMAP_MINSZ) ||
    arg.flags.some((f) => !UNMAP_FLAGS.has(f))
  ) {
    return { ret: -Errno.EINVAL };
  }
  const all = arg.flags.includes('ALL');
  const invalidateVaddr = arg.flags.includes('VADDR');
  const dirty = arg.flags.includes('GET_DIRTY_BITMAP');
  if (dirty && (all || invalidateVaddr)) return { ret: -Errno.EINVAL };

  const pgsize = iommu.minPageSize;
  let { iova } = arg;
  let size: bigint = arg.size;
  if ((iova & (pgsize - 1n)) !== 0n) return { ret: -Errno.EINVAL };
  if (all) {
    if (iova !== 0n || size !== 0n) return { ret: -Errno.EINVAL };
    size = U64_MAX;
  } else if (size === 0n || (size & (pgsize - 1n)) !== 0n || iova + size - 1n > U64_MAX) {
    return { ret: -Errno.EINVAL };
  }
  // Dirty bitmap requested: tracking must be on (the bitmap's pgsize is not in the trace).
  if (dirty && !iommu.dirtyPageTracking) return { ret: -Errno.EINVAL };

  // v2 forbids bisecting a mapping: the range must start and end on mapping edges.
  if (iommu.v2 && !all) {
    const first = iommu.dmaList.find(iova, 1n);
    if (first && first.iova !== iova) return { ret: -Errno.EINVAL };
    const last = iommu.dmaList.find(iova + size - 1n, 0n);
    if (last && last.iova + last.size !== iova + size) return { ret: -Errno.EINVAL };
  }

  const end = iova + size;
  let unmapped = 0n;
  let dma = iommu.dmaList.find(iova, size);
  const invalidated: VfioDma[] = [];
  let walkedTo = all ? end : iova + size;
  const forced: { start: bigint; size: bigint }[] = [];
  for (; dma && dma.iova < end; dma = iommu.dmaList.next(dma)) {
    // v1: a mapping that starts before iova stops the walk (success, maybe size 0).
    if (!iommu.v2 && iova > dma.iova) break;
    if (invalidateVaddr) {
      if (dma.vaddrInvalid) {
        // Already invalid: undo this call's invalidations and fail.
        for (const d of invalidated) {
          d.vaddrInvalid = false;
          iommu.vaddrInvalidCount--;
        }
        return { ret: -Errno.EINVAL };
      }
      dma.vaddrInvalid = true;
      iommu.vaddrInvalidCount++;
      invalidated.push(dma);
      unmapped += dma.size;
      continue;
    }
    if (dma.vpfns.size > 0) {
      onPins(iommu, dma);
      forced.push({ start: dma.iova, size: dma.size });
    }
    unmapped += dma.size;
    if (dma.iova + dma.size > walkedTo) walkedTo = dma.iova + dma.size;
    // v1 removes a mapping whose first page is covered, even past the range's end.
    removeDma(iommu, dma);
  }
  const r: IoctlResult = { ret: 0, out: { size: hex(unmapped) }, touched: { start: iova, size: walkedTo - iova } };
  if (forced.length > 0) r.forcedUnpins = forced;
  return r;
}
