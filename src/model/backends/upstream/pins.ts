/**
 * The external pin API of a type1 container (Linux 6.1):
 * vfio_iommu_type1_pin_pages / vfio_iommu_type1_unpin_pages, called by
 * vendor drivers of mediated devices through vfio_pin_pages. Each pinned
 * page is a vpfn of its vfio_dma with a reference count; it is charged only
 * when the container has no IOMMU-backed domain (do_accounting), because a
 * domain's mapping already charged it.
 */
import { Errno } from '../../errno.js';
import { IOMMU_READ, IOMMU_WRITE } from '../../iommu/topology.js';
import type { VfioDma } from '../../type1/vfio-dma.js';
import type { VfioIommu } from '../../type1/vfio-iommu.js';
import { reportPinOutsideDma } from '../../type1/pin-findings.js';
import { type Pfn, type Vaddr, hex } from '../../units.js';

/** vfio_pin_page_external: one page from the task's mm, charged if asked. */
function pinPageExternal(iommu: VfioIommu, dma: VfioDma, at: bigint, doAccounting: boolean): number {
  const env = iommu.env;
  // mmget_not_zero(dma->mm) (commit 046eca5018f8, in 6.1.y stable): the mm
  // that mapped has gone, its task exec'd or exited (a forked child's
  // mapping in a container others hold): no mm to pin from.
  const mapper = env.mmOwner(dma);
  if (!mapper) return -Errno.ENODEV;
  const va = (dma.vaddr + (at - dma.iova)) as Vaddr;
  // vaddr_get_pfns(mm, vaddr, 1, dma->prot, ...): the mapping's prot, not the pin's.
  const t = mapper.mm.translate(va, 1, env.pinAccess((dma.prot & IOMMU_WRITE) !== 0));
  if (!t.ok) return -Errno.EFAULT;
  const run = t.runs[0]!;
  if (run.pfnmap && !iommu.policy.pinsPfnmap) return -Errno.EFAULT;
  if (doAccounting && !run.reserved && iommu.policy.accounts(dma)) {
    const owner = env.process(dma.pid);
    const limit = env.limitPages(owner);
    if (!dma.lockCap && owner.lockedVm + 1 > limit) {
      return env.refuseOverLimit(
        dma.pid,
        `Cannot pin iova ${hex(at)} for a mediated device: pid ${dma.pid} has ${owner.lockedVm} of ${limit} pages locked (RLIMIT_MEMLOCK)`,
        { pid: dma.pid, iova: hex(at), locked_vm: owner.lockedVm, needed: 1, limit_pages: limit },
      );
    }
    iommu.chargePin(dma, { pfn: run.pfn, pages: 1 });
  }
  dma.vpfns.add(at, { pfn: run.pfn as Pfn, refCount: 1, reserved: run.reserved });
  return 0;
}

/** vfio_unpin_page_external: drops one reference; the last one unpins and uncharges. */
function unpinPageExternal(iommu: VfioIommu, dma: VfioDma, at: bigint, doAccounting: boolean): boolean {
  const v = dma.vpfns.get(at);
  if (!v) return false;
  v.refCount--;
  if (v.refCount === 0) {
    dma.vpfns.remove(at, v);
    if (doAccounting && !v.reserved) iommu.unchargePin(dma, { pfn: v.pfn, pages: 1 });
  }
  return true;
}

/** Where designs that keep vpfns differ in refusing a pin. */
export interface ExternalPinRules {
  /** The errno for a v1 container (type1: EACCES, v2 only), or 0 when v1 is allowed. */
  v1Errno: number;
  /** The errno for an IOVA no mapping covers. */
  outsideErrno: number;
}

export const TYPE1_PIN_RULES: ExternalPinRules = { v1Errno: -Errno.EACCES, outsideErrno: -Errno.EINVAL };

export function pinPages(
  iommu: VfioIommu,
  iovas: readonly bigint[],
  prot: { read: boolean; write: boolean },
  rules: ExternalPinRules = TYPE1_PIN_RULES,
): number {
  if (!iommu.v2 && rules.v1Errno !== 0) return rules.v1Errno;
  const wanted = (prot.read ? IOMMU_READ : 0) | (prot.write ? IOMMU_WRITE : 0);
  const doAccounting = !iommu.hasIommuDomain();
  for (let i = 0; i < iovas.length; i++) {
    const at = iovas[i]!;
    const dma = iommu.dmaList.find(at, iommu.env.pageSize);
    let ret = 0;
    if (!dma) {
      reportPinOutsideDma(iommu.env, at);
      ret = rules.outsideErrno;
    }
    else if ((dma.prot & wanted) !== wanted) ret = -Errno.EPERM;
    else {
      const v = dma.vpfns.get(at);
      if (v) v.refCount++;
      else ret = pinPageExternal(iommu, dma, at, doAccounting);
    }
    if (ret !== 0) {
      // pin_unwind: release what this call pinned.
      for (let j = 0; j < i; j++) {
        const d = iommu.dmaList.find(iovas[j]!, iommu.env.pageSize);
        if (d) unpinPageExternal(iommu, d, iovas[j]!, doAccounting);
      }
      return ret;
    }
  }
  return iovas.length;
}

/**
 * vfio_iommu_type1_unpin_pages stops at an IOVA with no mapping and ignores
 * pages that are not pinned (6.1: no WARN); the core reports both.
 */
export function unpinPages(iommu: VfioIommu, iovas: readonly bigint[], rules: ExternalPinRules = TYPE1_PIN_RULES): number {
  if (!iommu.v2 && rules.v1Errno !== 0) return rules.v1Errno;
  const doAccounting = !iommu.hasIommuDomain();
  for (const at of iovas) {
    const dma = iommu.dmaList.find(at, iommu.env.pageSize);
    if (!dma) break;
    unpinPageExternal(iommu, dma, at, doAccounting);
  }
  return iovas.length;
}

/**
 * An unmap reached a mapping whose vpfns the vendor driver did not release
 * after the notification: the kernel would retry and BUG_ON. Report it and
 * go on as if the driver had unpinned, so the books stay consistent.
 */
export function forceUnpinOutstanding(iommu: VfioIommu, dma: VfioDma): void {
  const doAccounting = !iommu.hasIommuDomain();
  let pages = 0;
  for (const [at, v] of [...dma.vpfns]) {
    pages++;
    v.refCount = 1;
    unpinPageExternal(iommu, dma, at, doAccounting);
  }
  iommu.env.report(
    'PIN_LEAK',
    `Unmap of iova ${hex(dma.iova)} size ${hex(dma.size)} found ${pages} pages still pinned by a vendor driver after the unmap notification (the kernel would BUG after 10 retries)`,
    { iova: hex(dma.iova), size: hex(dma.size), pages },
  );
}
