/**
 * VFIO_IOMMU_UNMAP_DMA through iommufd (iommufd_vfio_unmap_dma,
 * iopt_unmap_iova_range): only ALL is a known flag; a range must cover
 * whole mappings or the walk stops with ENOENT, after removing the mappings
 * below the offending one; an empty range is ENOENT (kernels before the
 * late-2025 fix); a v1 container first cuts mappings at the range's edges
 * (large pages are disabled for it), so any page-aligned range unmaps.
 * Pins outstanding after the notification: EDEADLOCK after 100 tries, the
 * mapping left in place.
 */
import { Errno } from '../../errno.js';
import type { UnmapDmaArg } from '../../events.js';
import { splitDma } from '../../type1/split-dma.js';
import type { VfioIommu } from '../../type1/vfio-iommu.js';
import { U64_MAX, hex } from '../../units.js';
import type { IoctlResult } from '../../vfio/driver.js';
import { removeDma } from '../upstream/remove.js';

const UNMAP_MINSZ = 24;

/** iopt_cut_iova: splits the mapping holding `last` so that a new one starts at last + 1. */
function cutAfter(iommu: VfioIommu, last: bigint): number {
  const dma = iommu.dmaList.find(last, 0n);
  if (!dma || dma.iova + dma.size - 1n === last) return 0;
  if (((last + 1n) & (iommu.minPageSize - 1n)) !== 0n) return -Errno.EINVAL;
  splitDma(iommu, dma, last + 1n);
  return 0;
}

export function iommufdUnmapDma(iommu: VfioIommu, arg: UnmapDmaArg): IoctlResult {
  if ((arg.argsz !== undefined && arg.argsz < UNMAP_MINSZ) || arg.flags.some((f) => f !== 'ALL')) {
    return { ret: -Errno.EINVAL };
  }
  let start: bigint = arg.iova;
  let last: bigint;
  if (arg.flags.includes('ALL')) {
    if (arg.iova !== 0n || arg.size !== 0n) return { ret: -Errno.EINVAL };
    last = U64_MAX;
  } else {
    if (!iommu.v2) {
      // Cut at iova - 1 (unless iova is 0) and at iova + size - 1.
      const cuts = [arg.iova + arg.size - 1n];
      if (arg.iova !== 0n) cuts.push(arg.iova - 1n);
      for (const c of cuts) {
        if (c > U64_MAX || c < 0n) continue;
        const ret = cutAfter(iommu, c);
        if (ret !== 0) return { ret };
      }
    }
    if (arg.size === 0n) return { ret: -Errno.EINVAL };
    if (arg.iova + arg.size - 1n > U64_MAX) return { ret: -Errno.EOVERFLOW };
    last = arg.iova + arg.size - 1n;
  }
  let unmapped = 0n;
  let ret = -Errno.ENOENT;
  for (;;) {
    const dma = iommu.dmaList.find(start, last - start + 1n);
    if (!dma) break;
    if (dma.iova < start || dma.iova + dma.size - 1n > last) {
      ret = -Errno.ENOENT;
      return { ret, touched: { start: arg.iova, size: last - arg.iova + 1n } };
    }
    if (dma.vpfns.size > 0) {
      iommu.env.report(
        'PIN_LEAK',
        `Unmap of iova ${hex(dma.iova)} size ${hex(dma.size)} found ${dma.vpfns.size} pages still pinned after the unmap notification; iommufd gives up with EDEADLOCK after 100 tries`,
        { iova: hex(dma.iova), size: hex(dma.size), pages: dma.vpfns.size },
      );
      return { ret: -Errno.EDEADLK, touched: { start: arg.iova, size: last - arg.iova + 1n } };
    }
    unmapped += dma.size;
    removeDma(iommu, dma);
    start = dma.iova + dma.size;
    if (start > last) break;
  }
  if (unmapped > 0n || arg.flags.includes('ALL')) ret = 0;
  const touched = { start: arg.iova, size: last - arg.iova + 1n };
  return ret === 0 ? { ret, out: { size: hex(unmapped) }, touched } : { ret, touched };
}
