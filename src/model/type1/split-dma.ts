/**
 * Cutting one mapping in two at a page boundary, with its pinned runs, its
 * vpfns and its charge divided between the halves (iommufd's
 * iopt_area_split, used to emulate v1 unmaps inside a mapping).
 */
import type { Bytes, Iova, Pfn, Vaddr } from '../units.js';
import { type DmaRun, type VfioDma, newDma, runSpans } from './vfio-dma.js';
import type { VfioIommu } from './vfio-iommu.js';

export function splitDma(iommu: VfioIommu, dma: VfioDma, at: bigint): VfioDma {
  const shift = iommu.env.pageShift;
  const cut = Number((at - dma.iova) >> shift);
  const high = newDma({
    iova: at as Iova,
    vaddr: (dma.vaddr + (at - dma.iova)) as Vaddr,
    size: (dma.iova + dma.size - at) as Bytes,
    prot: dma.prot,
    lockCap: dma.lockCap,
    pid: dma.pid,
    mm: dma.mm,
    seq: dma.seq,
  });
  high.iommuMapped = dma.iommuMapped;
  const lowRuns: DmaRun[] = [];
  for (const r of dma.runs) {
    if (r.offset + r.pages <= cut) lowRuns.push(r);
    else if (r.offset >= cut) high.runs.push({ ...r, offset: r.offset - cut });
    else {
      lowRuns.push({ ...r, pages: cut - r.offset });
      high.runs.push({ offset: 0, pages: r.offset + r.pages - cut, pfn: (r.pfn + BigInt(cut - r.offset)) as Pfn, reserved: r.reserved });
    }
  }
  dma.runs = lowRuns;
  for (const [iova, v] of [...dma.vpfns]) {
    if (iova >= at) {
      dma.vpfns.remove(iova, v);
      high.vpfns.add(iova, v);
    }
  }
  // Each half keeps the charge of its own pages (none when the policy charges nothing).
  const ownPages = high.iommuMapped
    ? runSpans(high.runs).reduce((n, sp) => n + sp.pages, 0)
    : high.vpfns.unreserved;
  const highTotal = Math.min(ownPages, dma.chargedDirect + dma.chargedPins);
  high.chargedDirect = Math.min(dma.chargedDirect, highTotal);
  high.chargedPins = highTotal - high.chargedDirect;
  dma.chargedDirect -= high.chargedDirect;
  dma.chargedPins -= high.chargedPins;
  dma.size = (at - dma.iova) as Bytes;
  dma.end = at;
  iommu.dmaList.link(high);
  return high;
}
