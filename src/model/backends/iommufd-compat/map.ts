/**
 * VFIO_IOMMU_MAP_DMA through iommufd (drivers/iommu/iommufd/vfio_compat.c
 * iommufd_vfio_map_dma, io_pagetable.c iopt_map_user_pages): only READ and
 * WRITE are known flags (no VADDR), no protection is required, wraps give
 * EOVERFLOW, reserved IOVA gives EINVAL, there is no dma_entry_limit, and
 * device memory cannot be pinned (EFAULT).
 */
import { Errno } from '../../errno.js';
import type { MapDmaArg } from '../../events.js';
import { IOMMU_READ, IOMMU_WRITE } from '../../iommu/topology.js';
import { iovaDmaValid } from '../../type1/iova-list.js';
import { newDma } from '../../type1/vfio-dma.js';
import type { VfioIommu } from '../../type1/vfio-iommu.js';
import { U64_MAX } from '../../units.js';
import type { IoctlResult } from '../../vfio/driver.js';
import { pinMapDma } from '../upstream/map.js';

const MAP_MINSZ = 32;

export function iommufdMapDma(iommu: VfioIommu, pid: number, seq: number, arg: MapDmaArg): IoctlResult {
  const env = iommu.env;
  if ((arg.argsz !== undefined && arg.argsz < MAP_MINSZ) || arg.flags.some((f) => f !== 'READ' && f !== 'WRITE')) {
    return { ret: -Errno.EINVAL };
  }
  let prot = 0;
  if (arg.flags.includes('READ')) prot |= IOMMU_READ;
  if (arg.flags.includes('WRITE')) prot |= IOMMU_WRITE;
  const { iova, vaddr, size } = arg;
  // iopt_alloc_pages: an empty length, then uptr + length overflowing.
  if (size === 0n) return { ret: -Errno.EINVAL };
  if (vaddr + size > U64_MAX) return { ret: -Errno.EOVERFLOW };
  // iopt_alloc_area_pages and iopt_check_iova, against iova_alignment.
  const mask = iommu.minPageSize - 1n;
  if ((size & mask) !== 0n) return { ret: -Errno.EINVAL };
  if ((iova & mask) !== 0n) return { ret: -Errno.EINVAL };
  if (iova + size - 1n > U64_MAX) return { ret: -Errno.EOVERFLOW };
  if (!iovaDmaValid(iommu.iovaList, iova, iova + size - 1n)) return { ret: -Errno.EINVAL };
  if (iommu.dmaList.find(iova, size)) return { ret: -Errno.EEXIST };
  // iopt_insert_area: the page offset of uptr.
  if ((vaddr & (env.pageSize - 1n)) !== 0n) return { ret: -Errno.EINVAL };

  const proc = env.process(pid);
  const dma = newDma({ iova, vaddr, size, prot, lockCap: proc.capIpcLock, pid, mm: proc.mm, seq });
  iommu.dmaList.link(dma);
  iommu.dmaAvail--;
  if (iommu.hasIommuDomain()) {
    // iopt_area_fill_domains: pin once, map into every domain.
    const ret = pinMapDma(iommu, dma, pid);
    if (ret !== 0) return { ret };
  }
  return { ret: 0 };
}
