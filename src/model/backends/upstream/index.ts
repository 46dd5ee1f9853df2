/**
 * Today's upstream type1 backend (drivers/vfio/vfio_iommu_type1.c as of
 * Linux 6.1, Debian 12): direct assignment through IOMMU domains, mediated
 * groups on an explicit emulated list, external pins as refcounted vpfns
 * charged once per container.
 */
import { Errno } from '../../errno.js';
import type { GroupSpec, IoctlCall, PageList } from '../../events.js';
import type { ModelEnv } from '../../env.js';
import { checkType1Invariants } from '../../type1/invariants.js';
import { VfioIommu } from '../../type1/vfio-iommu.js';
import { chargeablePages } from '../../type1/vfio-dma.js';
import { hex } from '../../units.js';
import type { BackendSnapshot, IoctlResult, IommuBackend, IommuDriver } from '../../vfio/driver.js';
import { attachGroup, detachGroup } from './attach.js';
import { mapDma } from './map.js';
import { forceUnpinOutstanding, pinPages, unpinPages } from './pins.js';
import { removeAllDmas } from './remove.js';
import { unmapDma } from './unmap.js';
import { snapshotType1 } from '../../type1/snapshot.js';
import { expandPages } from '../../common/page-list.js';

/** vfio_iommu_type1_check_extension with no container (iommu == NULL). */
function checkExtensionNoContainer(ext: string): number {
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

class UpstreamType1 implements IommuBackend {
  readonly iommu: VfioIommu;

  constructor(env: ModelEnv, v2: boolean, nesting: boolean) {
    this.iommu = new VfioIommu(env, v2, nesting);
  }

  ioctl(pid: number, seq: number, call: IoctlCall): IoctlResult {
    const iommu = this.iommu;
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
        return unmapDma(iommu, call, forceUnpinOutstanding);
      case 'VFIO_IOMMU_DIRTY_PAGES':
        return this.dirtyPages(call.flags);
      default:
        return { ret: -Errno.ENOTTY };
    }
  }

  /** vfio_iommu_type1_dirty_pages: START and STOP (GET_BITMAP needs a user buffer). */
  private dirtyPages(flags: string[]): IoctlResult {
    const iommu = this.iommu;
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

  attachGroup(pid: number, group: GroupSpec): number {
    return attachGroup(this.iommu, pid, group);
  }

  detachGroup(group: GroupSpec): void {
    detachGroup(this.iommu, group);
  }

  /** vfio_iommu_type1_release. */
  release(): void {
    this.iommu.emulatedGroups = [];
    removeAllDmas(this.iommu);
    this.iommu.domains = [];
  }

  pinPages(_group: GroupSpec, pages: PageList, prot: { read: boolean; write: boolean }): number {
    return pinPages(this.iommu, expandPages(pages, this.iommu.env.pageSize), prot);
  }

  unpinPages(_group: GroupSpec, pages: PageList): number {
    return unpinPages(this.iommu, expandPages(pages, this.iommu.env.pageSize));
  }

  chargedPids(): Set<number> {
    return new Set([...this.iommu.chargedByPid].filter(([, n]) => n !== 0).map(([pid]) => pid));
  }

  chargedTo(pid: number): number {
    return this.iommu.chargedByPid.get(pid) ?? 0;
  }

  checkInvariants(range?: { start: bigint; size: bigint }): void {
    // Charged once per container: the pinned pages of an IOMMU-mapped
    // mapping, or else its non-reserved vpfns.
    checkType1Invariants(this.iommu, range, (dma) =>
      dma.iommuMapped ? chargeablePages(dma) : [...dma.vpfns.values()].filter((v) => !v.reserved).length,
    );
  }

  snapshot(): BackendSnapshot {
    return snapshotType1('upstream', this.iommu);
  }
}

export const upstreamDriver: IommuDriver = {
  name: 'upstream',
  checkExtension: checkExtensionNoContainer,
  open(env: ModelEnv, iommuType: string): IommuBackend | number {
    switch (iommuType) {
      case 'VFIO_TYPE1_IOMMU':
        return new UpstreamType1(env, false, false);
      case 'VFIO_TYPE1v2_IOMMU':
        return new UpstreamType1(env, true, false);
      case 'VFIO_TYPE1_NESTING_IOMMU':
        return new UpstreamType1(env, true, true);
      default:
        return -Errno.EINVAL;
    }
  },
};
