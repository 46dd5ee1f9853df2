/**
 * Pinning and unpinning a vfio_dma's pages for the IOMMU, and the locked
 * memory charge that goes with it (vfio_pin_pages_remote,
 * vfio_unpin_pages_remote, vfio_iommu_map).
 */
import type { ModelEnv } from '../env.js';
import { type Pfn, hex } from '../units.js';
import type { Domain } from './domain.js';
import type { FrameSpan } from '../memory/frame-ledger.js';
import type { ChargePolicy } from './vfio-iommu.js';
import { type DmaRun, type VfioDma, runSpans, runSpansExceptVpfns } from './vfio-dma.js';
import { Errno } from '../errno.js';
import { IOMMU_WRITE } from '../iommu/topology.js';

export type PinResult = { ok: true; runs: DmaRun[]; spans: FrameSpan[]; charge: number } | { ok: false; ret: number };

/**
 * Pins [offset, offset + npages) of the mapping from the task's address
 * space. vfio_pin_pages_remote charges one page per pinned page that is not
 * reserved and not already a vpfn (already charged by an external pin);
 * `locked_vm + charge > limit` fails with ENOMEM unless lock_cap. The check
 * runs against the current process (the caller of the ioctl).
 */
export function pinRemote(
  env: ModelEnv,
  policy: ChargePolicy,
  dma: VfioDma,
  currentPid: number,
  offset: number,
  npages: number,
): PinResult {
  const owner = env.process(dma.pid);
  const va = dma.vaddr + (BigInt(offset) << env.pageShift);
  // vaddr_get_pfns: FOLL_WRITE when the mapping is writable.
  const t = owner.mm.translate(va as typeof dma.vaddr, npages, env.pinAccess((dma.prot & IOMMU_WRITE) !== 0));
  if (!t.ok) return { ok: false, ret: -Errno.EFAULT };
  if (!policy.pinsPfnmap && t.runs.some((r) => r.pfnmap)) return { ok: false, ret: -Errno.EFAULT };
  const runs: DmaRun[] = [];
  let off = offset;
  for (const r of t.runs) {
    runs.push({ offset: off, pages: r.pages, pfn: r.pfn, reserved: r.reserved });
    off += r.pages;
  }
  const spans = runSpansExceptVpfns(dma, runs, env.pageShift);
  let charge = 0;
  for (const s of spans) charge += s.pages;
  const current = env.process(currentPid);
  if (!policy.accounts(dma)) return { ok: true, runs, spans, charge: 0 };
  const limit = env.limitPages(current);
  if (!dma.lockCap && current.lockedVm + charge > limit) {
    const ret = env.refuseOverLimit(
      currentPid,
      `Cannot pin ${charge} pages for iova ${hex(dma.iova)} size ${hex(dma.size)}: pid ${currentPid} has ${current.lockedVm} of ${fmtLimit(limit)} pages locked (RLIMIT_MEMLOCK)`,
      {
        pid: currentPid,
        iova: hex(dma.iova),
        size: hex(dma.size),
        locked_vm: current.lockedVm,
        needed: charge,
        limit_pages: limit,
        required_limit_bytes: ((BigInt(current.lockedVm + charge)) << env.pageShift).toString(),
      },
    );
    return { ok: false, ret };
  }
  return { ok: true, runs, spans, charge };
}

function fmtLimit(n: number): string {
  return Number.isFinite(n) ? String(n) : 'unlimited';
}

/** Count of vpfns (non-reserved when `reservedToo` is false) in a page range of the mapping. */
export function vpfnsIn(env: ModelEnv, dma: VfioDma, offset: number, npages: number, reservedToo: boolean): number {
  if (dma.vpfns.size === 0) return 0;
  const start = dma.iova + (BigInt(offset) << env.pageShift);
  const end = start + (BigInt(npages) << env.pageShift);
  let n = 0;
  for (const [iova, v] of dma.vpfns) if (iova >= start && iova < end && (reservedToo || !v.reserved)) n++;
  return n;
}

/**
 * vfio_iommu_map into one domain: each run at its iova. A mapping beyond
 * what the domain can translate fails as the IOMMU driver fails it
 * (intel_iommu_map: -EFAULT past the domain's address width); nothing is
 * left mapped in this domain then. 0 or a negative errno.
 */
export function mapRuns(env: ModelEnv, domain: Domain, dma: VfioDma, runs: readonly DmaRun[]): number {
  const ap = domain.unit.aperture;
  if (dma.iova < ap.start || dma.iova + dma.size - 1n > ap.end) return -Errno.EFAULT;
  for (const r of runs) {
    const at = dma.iova + (BigInt(r.offset) << env.pageShift);
    if (!domain.pt.map(at as typeof dma.iova, r.pages, r.pfn as Pfn, dma.prot | domain.prot)) {
      env.report('IOMMU_MISMATCH', `IOMMU domain ${domain.id} already maps iova ${hex(at)}: the model mapped twice`, {
        domain: domain.id,
        iova: hex(at),
      });
    }
  }
  return 0;
}

/**
 * vfio_unmap_unpin: unmaps the mapping from every domain and unpins its
 * runs; returns the frames unpinned that were charged: every non-reserved
 * pinned page, including those also held as vpfns (with an IOMMU domain
 * the vpfns were never charged on their own).
 */
export function unmapUnpin(domains: readonly Domain[], dma: VfioDma): FrameSpan[] {
  if (!dma.iommuMapped) return [];
  for (const d of domains) d.pt.unmap(dma.iova, dma.size);
  const spans = runSpans(dma.runs);
  dma.runs = [];
  dma.iommuMapped = false;
  return spans;
}
