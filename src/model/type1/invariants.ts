/**
 * Invariants of a type1-style container, checked after events over the
 * IOVA range they touched: every domain's page table equals the DMA list,
 * no mapping lies outside a domain's aperture or in a reserved window, no
 * vpfn lies outside its mapping, and each mapping's charge is what the
 * design's rule says. A broken invariant is a finding.
 */
import type { PtEntry } from '../iommu/page-table.js';
import { hex } from '../units.js';
import { type VfioDma, dmaCharged } from './vfio-dma.js';
import type { VfioIommu } from './vfio-iommu.js';

function expectedEntries(iommu: VfioIommu, dmas: readonly VfioDma[], prot: number, start: bigint, end: bigint): PtEntry[] {
  const shift = iommu.env.pageShift;
  const out: PtEntry[] = [];
  for (const d of dmas) {
    if (!d.iommuMapped) continue;
    for (const r of d.runs) {
      let s = d.iova + (BigInt(r.offset) << shift);
      let e = s + (BigInt(r.pages) << shift);
      let pfn = r.pfn as bigint;
      if (e <= start || s >= end) continue;
      if (s < start) {
        pfn += (start - s) >> shift;
        s = start;
      }
      if (e > end) e = end;
      const pages = Number((e - s) >> shift);
      const last = out[out.length - 1];
      const p = d.prot | prot;
      if (last && last.prot === p && last.iova + (BigInt(last.pages) << shift) === s && last.pfn + BigInt(last.pages) === pfn) {
        last.pages += pages;
      } else {
        out.push({ iova: s as PtEntry['iova'], pages, pfn: pfn as PtEntry['pfn'], prot: p });
      }
    }
  }
  return out;
}

function normalize(entries: PtEntry[], shift: bigint): PtEntry[] {
  const out: PtEntry[] = [];
  for (const e of entries) {
    const last = out[out.length - 1];
    if (last && last.prot === e.prot && last.iova + (BigInt(last.pages) << shift) === e.iova && last.pfn + BigInt(last.pages) === e.pfn) {
      last.pages += e.pages;
    } else out.push({ ...e });
  }
  return out;
}

function sameEntries(a: PtEntry[], b: PtEntry[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((e, i) => {
    const f = b[i]!;
    return e.iova === f.iova && e.pages === f.pages && e.pfn === f.pfn && e.prot === f.prot;
  });
}

export function checkType1Invariants(
  iommu: VfioIommu,
  range: { start: bigint; size: bigint } | undefined,
  expectedCharge: (dma: VfioDma) => number,
): void {
  const env = iommu.env;
  const start = range?.start ?? 0n;
  const end = range ? range.start + range.size : 1n << 64n;
  const dmas = iommu.dmaList.overlapping(start, end - start);
  for (const domain of iommu.domains) {
    const want = expectedEntries(iommu, dmas, domain.prot, start, end);
    const have = normalize(domain.pt.entriesIn(start as PtEntry['iova'], end - start), env.pageShift);
    if (!sameEntries(want, have)) {
      env.report('IOMMU_MISMATCH', `IOMMU domain ${domain.id} page table differs from the DMA list in [${hex(start)}, ${hex(end)})`, {
        domain: domain.id,
        expected_entries: want.length,
        actual_entries: have.length,
      });
    }
    for (const d of dmas) {
      const last = d.iova + d.size - 1n;
      const ap = domain.unit.aperture;
      if (d.iova < ap.start || last > ap.end) {
        env.report('IOMMU_MISMATCH', `Mapping iova ${hex(d.iova)} size ${hex(d.size)} lies outside the aperture of IOMMU ${domain.unit.id}`, {
          domain: domain.id,
          iova: hex(d.iova),
          size: hex(d.size),
        });
      }
      for (const w of domain.unit.reserved) {
        if (d.iova <= w.end && last >= w.start) {
          env.report('IOMMU_MISMATCH', `Mapping iova ${hex(d.iova)} size ${hex(d.size)} overlaps reserved window ${hex(w.start)}-${hex(w.end)} of IOMMU ${domain.unit.id}`, {
            domain: domain.id,
            iova: hex(d.iova),
            size: hex(d.size),
          });
        }
      }
    }
  }
  for (const d of dmas) {
    const held = d.vpfns.bounds();
    if (held && (held.lo < d.iova || held.hi >= d.end)) {
      for (const at of d.vpfns.keys()) {
        if (at < d.iova || at >= d.end) {
          env.report('PIN_OUTSIDE_DMA', `Pinned page iova ${hex(at)} lies outside its mapping iova ${hex(d.iova)} size ${hex(d.size)}`, {
            iova: hex(at),
          });
        }
      }
    }
    const want = expectedCharge(d);
    if (dmaCharged(d) !== want) {
      env.report('ACCT_INCONSISTENT', `Mapping iova ${hex(d.iova)} size ${hex(d.size)} holds ${dmaCharged(d)} charged pages where the design's rule gives ${want}`, {
        iova: hex(d.iova),
        charged: dmaCharged(d),
        expected: want,
      });
    }
  }
}
