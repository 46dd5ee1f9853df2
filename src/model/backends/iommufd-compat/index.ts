/**
 * iommufd's type1 compatibility (drivers/iommu/iommufd/vfio_compat.c,
 * io_pagetable.c, pages.c, as of Linux 6.12): the container ioctls served
 * on an IOAS. Pages are pinned once per mapping however many domains hold
 * them, and once for domains and vendor-driver accesses together, like
 * type1; the differences it emulates:
 * - CAP_IPC_LOCK turns charging off entirely (IOPT_PAGES_ACCOUNT_NONE);
 * - device memory (VM_PFNMAP) cannot be pinned: EFAULT;
 * - MAP_DMA knows only READ/WRITE, needs neither, has no dma_entry_limit,
 *   and reports wraps as EOVERFLOW; UNMAP_DMA knows only ALL, refuses a
 *   partial mapping with ENOENT (after removing those below it), an empty
 *   range with ENOENT, and emulates v1 by cutting mappings;
 * - attaching a group whose aperture or reserved regions hit a mapping is
 *   EADDRINUSE (iopt_reserve_iova);
 * - pins: allowed in v1 containers, ENOENT outside a mapping, and pins left
 *   after the unmap notification give EDEADLOCK instead of a BUG;
 * - GET_INFO: DMA_AVAIL is U32_MAX and the ranges are the holes of the
 *   reserved tree; no VADDR, dirty tracking or nesting.
 * Device attach is modelled at group attach, as for type1 (iommufd attaches
 * when the device is opened); the mappings go with the last group, as for
 * type1 (iommufd keeps the IOAS until the container fd closes).
 */
import { Errno } from '../../errno.js';
import type { GroupSpec, IoctlCall, PageList } from '../../events.js';
import type { ModelEnv } from '../../env.js';
import { checkType1Invariants } from '../../type1/invariants.js';
import { U64_END, resvConflict } from '../../type1/iova-list.js';
import { snapshotType1 } from '../../type1/snapshot.js';
import { chargeablePages } from '../../type1/vfio-dma.js';
import { type ChargePolicy, VfioIommu } from '../../type1/vfio-iommu.js';
import { hex } from '../../units.js';
import type { BackendSnapshot, IoctlResult, IommuBackend, IommuDriver } from '../../vfio/driver.js';
import { expandPages } from '../../common/page-list.js';
import { attachGroup, detachGroup } from '../upstream/attach.js';
import { type ExternalPinRules, pinPages, unpinPages } from '../upstream/pins.js';
import { releaseAll } from '../upstream/remove.js';
import { iommufdMapDma } from './map.js';
import { iommufdUnmapDma } from './unmap.js';

/** pages.c: account_mode is NONE for a CAP_IPC_LOCK caller; PFNMAP memory cannot be pinned. */
export const IOMMUFD_CHARGING: ChargePolicy = {
  accounts: (dma) => !dma.lockCap,
  pinsPfnmap: false,
};

/** iommufd_access_pin_pages: no v2 requirement, ENOENT where no area covers the range. */
const IOMMUFD_PIN_RULES: ExternalPinRules = { v1Errno: 0, outsideErrno: -Errno.ENOENT };

const U32_MAX = 4294967295;

/** iommufd_vfio_check_extension. */
function checkExtension(ext: string): number {
  switch (ext) {
    case 'VFIO_TYPE1_IOMMU':
    case 'VFIO_TYPE1v2_IOMMU':
    case 'VFIO_UNMAP_ALL':
      return 1;
    default:
      return 0;
  }
}

export class IommufdCompat implements IommuBackend {
  readonly iommu: VfioIommu;

  constructor(private readonly env: ModelEnv, v2: boolean) {
    this.iommu = new VfioIommu(env, v2, false, IOMMUFD_CHARGING);
  }

  ioctl(pid: number, seq: number, call: IoctlCall): IoctlResult {
    const iommu = this.iommu;
    switch (call.cmd) {
      case 'VFIO_CHECK_EXTENSION':
        if (call.extension === 'VFIO_DMA_CC_IOMMU') return { ret: iommu.domains.every((d) => d.prot !== 0) ? 1 : 0 };
        return { ret: checkExtension(call.extension) };
      case 'VFIO_IOMMU_GET_INFO': {
        const ranges = iommu.iovaList.length > 0 ? iommu.iovaList : [{ start: 0n, end: U64_END }];
        return {
          ret: 0,
          out: { iova_pgsizes: hex(iommu.pgsizeBitmap), iova_ranges: ranges.map((r) => [hex(r.start), hex(r.end)]), dma_avail: U32_MAX },
        };
      }
      case 'VFIO_IOMMU_MAP_DMA':
        return iommufdMapDma(iommu, pid, seq, call);
      case 'VFIO_IOMMU_UNMAP_DMA':
        return iommufdUnmapDma(iommu, call);
      default:
        // -ENOIOCTLCMD, which the syscall returns as ENOTTY.
        return { ret: -Errno.ENOTTY };
    }
  }

  attachGroup(pid: number, group: GroupSpec): number {
    if (group.kind === 'iommu') {
      const unit = this.env.topology.unit(group.iommu);
      // iopt_table_add_domain / iopt_reserve_iova: reserving what the domain
      // cannot translate, or its reserved regions, hits a mapping.
      const outside = this.iommu.dmaList.all().some((d) => d.iova < unit.aperture.start || d.iova + d.size - 1n > unit.aperture.end);
      if (outside || resvConflict(this.iommu.dmaList, unit.reserved)) return -Errno.EADDRINUSE;
    }
    return attachGroup(this.iommu, pid, group);
  }

  detachGroup(group: GroupSpec): void {
    detachGroup(this.iommu, group);
  }

  release(): void {
    releaseAll(this.iommu);
  }

  pinPages(_group: GroupSpec, pages: PageList, prot: { read: boolean; write: boolean }): number {
    return pinPages(this.iommu, expandPages(pages, this.env.pageSize), prot, IOMMUFD_PIN_RULES);
  }

  unpinPages(_group: GroupSpec, pages: PageList): number {
    return unpinPages(this.iommu, expandPages(pages, this.env.pageSize), IOMMUFD_PIN_RULES);
  }

  chargedPids(): Set<number> {
    return new Set([...this.iommu.chargedByPid].filter(([, n]) => n !== 0).map(([pid]) => pid));
  }

  chargedTo(pid: number): number {
    return this.iommu.chargedByPid.get(pid) ?? 0;
  }

  mmGone(pid: number): void {
    this.iommu.mmGone(pid);
  }

  checkInvariants(range?: { start: bigint; size: bigint }): void {
    // Once per mapping, as type1, or nothing for a CAP_IPC_LOCK mapper.
    checkType1Invariants(this.iommu, range, (dma) => {
      if (!IOMMUFD_CHARGING.accounts(dma)) return 0;
      return dma.iommuMapped ? chargeablePages(dma) : dma.vpfns.unreserved;
    });
  }

  mappings(): number {
    return this.iommu.dmaList.count;
  }

  snapshot(): BackendSnapshot {
    const s = snapshotType1('iommufd-compat', this.iommu);
    s.dmaAvail = U32_MAX;
    return s;
  }
}

export const iommufdCompatDriver: IommuDriver = {
  name: 'iommufd-compat',
  checkExtension,
  open(env: ModelEnv, iommuType: string): IommuBackend | number {
    // iommufd_vfio_set_iommu: anything but type1 and type1v2 is EINVAL.
    if (iommuType === 'VFIO_TYPE1_IOMMU') return new IommufdCompat(env, false);
    if (iommuType === 'VFIO_TYPE1v2_IOMMU') return new IommufdCompat(env, true);
    return -Errno.EINVAL;
  },
};
