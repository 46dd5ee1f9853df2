/**
 * The container ioctls of a type1 backend (vfio_iommu_type1_ioctl) and the
 * choice of v1/v2 at open (vfio_iommu_type1_open). Shared by the designs
 * built on type1.
 */
import { Errno } from '../../errno.js';
import type { IoctlCall } from '../../events.js';
import type { VfioIommu } from '../../type1/vfio-iommu.js';
import { hex } from '../../units.js';
import type { IoctlResult } from '../../vfio/driver.js';
import { mapDma } from './map.js';
import { type OutstandingPins, unmapDma } from './unmap.js';

/** vfio_iommu_type1_check_extension with no container (iommu == NULL). */
export function checkExtensionNoContainer(ext: string): number {
  switch (ext) {
    case 'VFIO_TYPE1_IOMMU':
    case 'VFIO_TYPE1v2_IOMMU':
    case 'VFIO_TYPE1_NESTING_IOMMU':
    case 'VFIO_UNMAP_ALL':
    case 'VFIO_UPDATE_VADDR':
      return 1;
    default:
      return 0;
  }
}

/**
 * vfio_iommu_type1_open's argument. Anything else: no registered driver
 * claims it, and vfio_ioctl_set_iommu returns ENODEV.
 */
export function type1Mode(iommuType: string): { v2: boolean; nesting: boolean } | number {
  switch (iommuType) {
    case 'VFIO_TYPE1_IOMMU':
      return { v2: false, nesting: false };
    case 'VFIO_TYPE1v2_IOMMU':
      return { v2: true, nesting: false };
    case 'VFIO_TYPE1_NESTING_IOMMU':
      return { v2: true, nesting: true };
    default:
      return -Errno.ENODEV;
  }
}

export function type1Ioctl(iommu: VfioIommu, pid: number, seq: number, call: IoctlCall, onPins: OutstandingPins): IoctlResult {
  switch (call.cmd) {
    case 'VFIO_CHECK_EXTENSION':
      if (call.extension === 'VFIO_DMA_CC_IOMMU') {
        // vfio_domains_have_iommu_cache: every domain enforces coherency.
        return { ret: iommu.domains.every((d) => d.prot !== 0) ? 1 : 0 };
      }
      return { ret: checkExtensionNoContainer(call.extension) };
    case 'VFIO_IOMMU_GET_INFO':
      return {
        ret: 0,
        out: {
          iova_pgsizes: hex(iommu.pgsizeBitmap),
          iova_ranges: iommu.iovaList.map((r) => [hex(r.start), hex(r.end)]),
          dma_avail: iommu.dmaAvail,
        },
      };
    case 'VFIO_IOMMU_MAP_DMA':
      return mapDma(iommu, pid, seq, call);
    case 'VFIO_IOMMU_UNMAP_DMA':
      return unmapDma(iommu, call, onPins);
    case 'VFIO_IOMMU_DIRTY_PAGES':
      return dirtyPages(iommu, call.flags);
    default:
      return { ret: -Errno.ENOTTY };
  }
}

/** vfio_iommu_type1_dirty_pages: START and STOP (GET_BITMAP needs a user buffer). */
function dirtyPages(iommu: VfioIommu, flags: string[]): IoctlResult {
  if (!iommu.v2) return { ret: -Errno.EACCES };
  const known = ['START', 'STOP', 'GET_BITMAP'];
  if (flags.length !== 1 || !known.includes(flags[0]!)) return { ret: -Errno.EINVAL };
  if (flags[0] === 'START') {
    if (!iommu.dirtyPageTracking) {
      const tooBig = iommu.dmaList.all().some((d) => d.size / iommu.minPageSize > 0x7fffffffn);
      if (tooBig) return { ret: -Errno.EINVAL };
      iommu.dirtyPageTracking = true;
    }
    return { ret: 0 };
  }
  if (flags[0] === 'STOP') {
    iommu.dirtyPageTracking = false;
    return { ret: 0 };
  }
  return { ret: iommu.dirtyPageTracking ? 0 : -Errno.EINVAL };
}
