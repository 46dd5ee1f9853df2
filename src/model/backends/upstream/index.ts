/**
 * Today's upstream type1 backend (drivers/vfio/vfio_iommu_type1.c as of
 * Linux 6.1, Debian 12): direct assignment through IOMMU domains, mediated
 * groups on an explicit emulated list, external pins as refcounted vpfns
 * charged once per container.
 */
import type { GroupSpec, IoctlCall, PageList } from '../../events.js';
import type { ModelEnv } from '../../env.js';
import { checkType1Invariants } from '../../type1/invariants.js';
import { VfioIommu } from '../../type1/vfio-iommu.js';
import { chargeablePages } from '../../type1/vfio-dma.js';
import type { BackendSnapshot, IoctlResult, IommuBackend, IommuDriver } from '../../vfio/driver.js';
import { attachGroup, detachGroup } from './attach.js';
import { checkExtensionNoContainer, type1Ioctl, type1Mode } from './ioctl.js';
import { forceUnpinOutstanding, pinPages, unpinPages } from './pins.js';
import { releaseAll } from './remove.js';
import { snapshotType1 } from '../../type1/snapshot.js';
import { expandPages } from '../../common/page-list.js';

export class UpstreamType1 implements IommuBackend {
  readonly iommu: VfioIommu;

  constructor(env: ModelEnv, v2: boolean, nesting: boolean) {
    this.iommu = new VfioIommu(env, v2, nesting);
  }

  ioctl(pid: number, seq: number, call: IoctlCall): IoctlResult {
    return type1Ioctl(this.iommu, pid, seq, call, forceUnpinOutstanding);
  }

  attachGroup(pid: number, group: GroupSpec): number {
    return attachGroup(this.iommu, pid, group);
  }

  detachGroup(group: GroupSpec): void {
    detachGroup(this.iommu, group);
  }

  release(): void {
    releaseAll(this.iommu);
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

  mmGone(pid: number): void {
    this.iommu.mmGone(pid);
  }

  checkInvariants(range?: { start: bigint; size: bigint }): void {
    // Charged once per container: the pinned pages of an IOMMU-mapped
    // mapping, or else its non-reserved vpfns.
    checkType1Invariants(this.iommu, range, (dma) =>
      dma.iommuMapped ? chargeablePages(dma) : dma.vpfns.unreserved,
    );
  }

  mappings(): number {
    return this.iommu.dmaList.count;
  }

  snapshot(): BackendSnapshot {
    return snapshotType1('upstream', this.iommu);
  }
}

export const upstreamDriver: IommuDriver = {
  name: 'upstream',
  checkExtension: checkExtensionNoContainer,
  open(env: ModelEnv, iommuType: string): IommuBackend | number {
    const mode = type1Mode(iommuType);
    return typeof mode === 'number' ? mode : new UpstreamType1(env, mode.v2, mode.nesting);
  },
};
