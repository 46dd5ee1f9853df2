/**
 * Groups joining and leaving a container's backend:
 * vfio_iommu_type1_attach_group, vfio_iommu_replay,
 * vfio_iommu_type1_detach_group and vfio_iommu_unmap_unpin_reaccount.
 */
import { Errno } from '../../errno.js';
import type { GroupSpec } from '../../events.js';
import { IOMMU_CACHE } from '../../iommu/topology.js';
import { Domain } from '../../type1/domain.js';
import {
  type IovaRange,
  type ReservedWindow,
  U64_END,
  aperConflict,
  aperResize,
  resvConflict,
  resvExclude,
} from '../../type1/iova-list.js';
import type { FrameSpan } from '../../memory/frame-ledger.js';
import { mapRuns, pinRemote, unmapUnpin } from '../../type1/pin.js';
import { type VfioDma, vpfnSpans } from '../../type1/vfio-dma.js';
import type { VfioIommu } from '../../type1/vfio-iommu.js';
import { iova as toIova } from '../../units.js';
import { removeAllDmas } from './remove.js';

function reservedOf(iommu: VfioIommu, group: GroupSpec & { kind: 'iommu' }): ReservedWindow[] {
  return iommu.env.topology.unit(group.iommu).reserved;
}

export function attachGroup(iommu: VfioIommu, pid: number, group: GroupSpec): number {
  const env = iommu.env;
  // Check for duplicates.
  if (iommu.findGroup(group.id)) return -Errno.EINVAL;
  if (group.kind === 'mdev') {
    // VFIO_EMULATED_IOMMU: listed, no domain.
    iommu.emulatedGroups.unshift(group);
    return 0;
  }
  // iommu_enable_nesting: no emulated IOMMU driver implements nesting.
  if (iommu.nesting) return -Errno.ENODEV;
  const unit = env.topology.unit(group.iommu);
  if (aperConflict(iommu.iovaList, iommu.dmaList, unit.aperture.start, unit.aperture.end)) return -Errno.EINVAL;
  const resv = reservedOf(iommu, group);
  if (resvConflict(iommu.dmaList, resv)) return -Errno.EINVAL;
  const resized = aperResize(iommu.iovaList, unit.aperture.start, unit.aperture.end);
  const copy = resvExclude(resized, resv);
  if (!copy) return -Errno.EINVAL;
  if (!env.params.allowUnsafeInterrupts && !unit.interruptRemapping) return -Errno.EPERM;

  const prot = unit.cacheCoherent ? IOMMU_CACHE : 0;
  // Try to match an existing compatible domain (same driver ops, same prot).
  const compatible = iommu.domains.find((d) => d.prot === prot);
  if (compatible) {
    compatible.groups.unshift(group.id);
    iommu.iovaList = copy;
    return 0;
  }
  const domain = new Domain(iommu.allocDomainId(), unit, prot, env.pageShift);
  domain.groups.push(group.id);
  const ret = replay(iommu, pid, domain);
  if (ret !== 0) return ret;
  iommu.domains.unshift(domain);
  iommu.updatePgsizeBitmap();
  iommu.iovaList = copy;
  return 0;
}

/**
 * vfio_iommu_replay: maps every mapping into a new domain. Mappings already
 * pinned for another domain are copied from it; the others (a container
 * that had only mediated groups) are pinned now, charging only pages not
 * already charged as vpfns. On failure everything done here is undone.
 */
function replay(iommu: VfioIommu, pid: number, domain: Domain): number {
  const env = iommu.env;
  const done: { dma: VfioDma; pinnedHere: boolean; spans: FrameSpan[] }[] = [];
  const unwind = (ret: number): number => {
    for (const d of done.reverse()) {
      domain.pt.unmap(d.dma.iova, d.dma.size);
      if (d.pinnedHere) {
        d.dma.runs = [];
        iommu.unchargeDirect(d.dma, d.spans);
      }
    }
    return ret;
  };
  for (const dma of iommu.dmaList.all()) {
    if (dma.iommuMapped) {
      const ret = mapRuns(env, domain, dma, dma.runs);
      if (ret !== 0) return unwind(ret);
      done.push({ dma, pinnedHere: false, spans: [] });
      continue;
    }
    const pinned = pinRemote(env, iommu.policy, dma, pid, 0, Number(dma.size >> env.pageShift));
    if (!pinned.ok) return unwind(pinned.ret);
    const ret = mapRuns(env, domain, dma, pinned.runs);
    if (ret !== 0) return unwind(ret);
    dma.runs = pinned.runs;
    iommu.chargeDirect(dma, pinned.spans);
    done.push({ dma, pinnedHere: true, spans: pinned.spans });
  }
  // All mapped: mark them (the kernel's second tree walk).
  for (const d of done) d.dma.iommuMapped = true;
  return 0;
}

/**
 * vfio_iommu_unmap_unpin_reaccount: the last IOMMU-backed domain leaves
 * while mediated groups remain: unmap and unpin everything, and the charge
 * becomes exactly the non-reserved vpfns.
 */
function unmapUnpinReaccount(iommu: VfioIommu): void {
  for (const dma of iommu.dmaList.all()) {
    iommu.unchargeAll(dma, unmapUnpin(iommu.domains, dma));
    for (const span of vpfnSpans(dma)) iommu.chargePin(dma, span);
  }
}

/** vfio_iommu_aper_expand + vfio_iommu_resv_refresh after a domain is gone. */
function refreshIovaList(iommu: VfioIommu): void {
  const env = iommu.env;
  if (iommu.iovaList.length === 0) return;
  let start = 0n;
  let end: bigint = U64_END;
  for (const d of iommu.domains) {
    if (d.unit.aperture.start > start) start = d.unit.aperture.start;
    if (d.unit.aperture.end < end) end = d.unit.aperture.end;
  }
  const resv: ReservedWindow[] = [];
  for (const d of iommu.domains) {
    for (const gid of d.groups) {
      const g = env.topology.group(gid);
      if (g.kind === 'iommu') resv.push(...reservedOf(iommu, g));
    }
  }
  const base: IovaRange[] = [{ start: toIova(start), end: toIova(end) }];
  const next = resvExclude(base, resv);
  if (next) iommu.iovaList = next;
}

export function detachGroup(iommu: VfioIommu, group: GroupSpec): void {
  const emulated = iommu.emulatedGroups.findIndex((g) => g.id === group.id);
  if (emulated >= 0) {
    iommu.emulatedGroups.splice(emulated, 1);
    if (iommu.emulatedGroups.length === 0 && iommu.domains.length === 0) removeAllDmas(iommu);
    return;
  }
  const domain = iommu.domains.find((d) => d.groups.includes(group.id));
  if (!domain) return;
  domain.groups.splice(domain.groups.indexOf(group.id), 1);
  // Group ownership provides privilege: an empty domain goes away, and with
  // the last IOMMU domain the mappings go too, or are re-accounted to the
  // mediated groups' pins.
  if (domain.groups.length === 0) {
    if (iommu.domains.length === 1) {
      if (iommu.emulatedGroups.length === 0) removeAllDmas(iommu);
      else unmapUnpinReaccount(iommu);
    }
    iommu.domains.splice(iommu.domains.indexOf(domain), 1);
    iommu.updatePgsizeBitmap();
  }
  refreshIovaList(iommu);
}
