/**
 * VFIO_IOMMU_MAP_DMA: vfio_iommu_type1_map_dma and vfio_dma_do_map
 * (drivers/vfio/vfio_iommu_type1.c, Linux 6.1). Every check runs before any
 * state changes; a failure part-way removes the whole vfio_dma.
 */
import { Errno } from '../../errno.js';
import type { MapDmaArg } from '../../events.js';
import { IOMMU_READ, IOMMU_WRITE } from '../../iommu/topology.js';
import { iovaDmaValid } from '../../type1/iova-list.js';
import { newDma } from '../../type1/vfio-dma.js';
import type { VfioIommu } from '../../type1/vfio-iommu.js';
import { U64_MAX, hex } from '../../units.js';
import type { IoctlResult } from '../../vfio/driver.js';
import { removeDma } from './remove.js';
import { mapRuns, pinRemote } from '../../type1/pin.js';
import { type VfioDma, dmaCharged } from '../../type1/vfio-dma.js';

const MAP_FLAGS = new Set(['READ', 'WRITE', 'VADDR']);
/** offsetofend(struct vfio_iommu_type1_dma_map, size). */
const MAP_MINSZ = 32;

export function mapDma(iommu: VfioIommu, pid: number, seq: number, arg: MapDmaArg): IoctlResult {
  const env = iommu.env;
  // vfio_iommu_type1_map_dma: argsz too small or unknown flags.
  if ((arg.argsz !== undefined && arg.argsz < MAP_MINSZ) || arg.flags.some((f) => !MAP_FLAGS.has(f))) {
    return { ret: -Errno.EINVAL };
  }
  const setVaddr = arg.flags.includes('VADDR');
  let prot = 0;
  if (arg.flags.includes('WRITE')) prot |= IOMMU_WRITE;
  if (arg.flags.includes('READ')) prot |= IOMMU_READ;
  // vfio_dma_do_map: prot and VADDR are exclusive, and one is required.
  if ((prot && setVaddr) || (!prot && !setVaddr)) return { ret: -Errno.EINVAL };

  const { iova, vaddr, size } = arg;
  const mask = iommu.minPageSize - 1n;
  if (size === 0n || ((size | iova | vaddr) & mask) !== 0n) return { ret: -Errno.EINVAL };
  // Don't allow IOVA or virtual address wrap.
  if (iova + size - 1n > U64_MAX || vaddr + size - 1n > U64_MAX) return { ret: -Errno.EINVAL };

  const existing = iommu.dmaList.find(iova, size);
  if (setVaddr) {
    // VFIO_DMA_MAP_FLAG_VADDR: only an exact match of an invalidated mapping.
    if (!existing) return { ret: -Errno.ENOENT };
    if (!existing.vaddrInvalid || existing.iova !== iova || existing.size !== size) return { ret: -Errno.EINVAL };
    if (existing.mm !== undefined && !env.mmOwner(existing)) reportOwnerKept(iommu, existing);
    existing.vaddr = vaddr;
    existing.vaddrInvalid = false;
    iommu.vaddrInvalidCount--;
    return { ret: 0 };
  }
  if (existing) return { ret: -Errno.EEXIST };
  if (iommu.dmaAvail === 0) return { ret: -Errno.ENOSPC };
  if (!iovaDmaValid(iommu.iovaList, iova, iova + size - 1n)) return { ret: -Errno.EINVAL };

  const proc = env.process(pid);
  const dma = newDma({ iova, vaddr, size, prot, lockCap: proc.capIpcLock, pid, mm: proc.mm, seq });
  iommu.dmaAvail--;
  iommu.dmaList.link(dma);

  // Don't pin and map if the container has no IOMMU-capable domain.
  if (iommu.hasIommuDomain()) {
    const ret = pinMapDma(iommu, dma, pid);
    if (ret !== 0) return { ret };
  }

  // vfio_dma_bitmap_alloc: more than INT_MAX pages cannot be tracked.
  if (iommu.dirtyPageTracking && size / iommu.minPageSize > 0x7fffffffn) {
    removeDma(iommu, dma);
    return { ret: -Errno.EINVAL };
  }
  return { ret: 0 };
}

/**
 * A VADDR update (after an exec, the live-update case) of a mapping whose
 * mm has gone: the model keeps it tied to the old mm, charging nothing, as
 * 046eca5018f8 alone does; kernels that also have vfio_change_dma_owner
 * (the same series, "vfio/type1: restore locked_vm") move its charge to
 * the caller's mm. Which one a 6.1.y kernel has is not known here.
 */
function reportOwnerKept(iommu: VfioIommu, dma: VfioDma): void {
  const pages = dmaCharged(dma);
  iommu.env.report(
    'ACCT_EXEC',
    `VADDR update of iova ${hex(dma.iova)} size ${hex(dma.size)}, mapped by pid ${dma.pid} in an mm that has gone (exec, exit): the model keeps its ${pages} pages charged to that gone mm (nothing in locked_vm); a kernel with vfio_change_dma_owner charges them to the new mm`,
    { pid: dma.pid, iova: hex(dma.iova), size: hex(dma.size), pages },
  );
}

/**
 * vfio_pin_map_dma: pins a new mapping, maps it into every domain and
 * charges it; on failure the whole mapping is removed. 0 or a negative errno.
 */
export function pinMapDma(iommu: VfioIommu, dma: VfioDma, pid: number): number {
  const env = iommu.env;
  const pinned = pinRemote(env, iommu.policy, dma, pid, 0, Number(dma.size >> env.pageShift));
  if (!pinned.ok) {
    removeDma(iommu, dma);
    return pinned.ret;
  }
  // vfio_iommu_map: a domain that cannot map it fails the whole mapping.
  for (const [i, d] of iommu.domains.entries()) {
    const ret = mapRuns(env, d, dma, pinned.runs);
    if (ret !== 0) {
      for (const u of iommu.domains.slice(0, i)) u.pt.unmap(dma.iova, dma.size);
      removeDma(iommu, dma);
      return ret;
    }
  }
  dma.runs = pinned.runs;
  dma.iommuMapped = true;
  iommu.chargeDirect(dma, pinned.spans);
  return 0;
}
