/**
 * An IOMMU domain's page table as extents: each entry maps a run of IOVA
 * pages to a run of contiguous frames with one prot. Its cost follows the
 * number of runs mapped, never the bytes.
 */
import type { Iova, Pfn } from '../units.js';

export interface PtEntry {
  iova: Iova;
  pages: number;
  pfn: Pfn;
  /** IOMMU_READ | IOMMU_WRITE (| IOMMU_CACHE from the domain). */
  prot: number;
}

/** An entry with its end kept, so lookups do not compute it. */
interface Entry extends PtEntry {
  end: bigint;
}

export class PageTable {
  /** Sorted by iova, non-overlapping. */
  private entries: Entry[] = [];
  private mappedPages = 0;

  constructor(private readonly pageShift: bigint) {}

  get totalPages(): number {
    return this.mappedPages;
  }

  get size(): number {
    return this.entries.length;
  }

  all(): readonly PtEntry[] {
    return this.entries;
  }

  private endOf(e: Entry): bigint {
    return e.end;
  }

  /** Index of the first entry whose end is above `addr`. */
  private lowerBound(addr: bigint): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.endOf(this.entries[mid]!) <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** iommu_map: fails (-EEXIST in the drivers) if any page is already mapped. */
  map(iova: Iova, pages: number, pfn: Pfn, prot: number): boolean {
    const end = iova + (BigInt(pages) << this.pageShift);
    const i = this.lowerBound(iova);
    const next = this.entries[i];
    if (next && next.iova < end) return false;
    const prev = this.entries[i - 1];
    if (prev && prev.end === iova && prev.prot === prot && prev.pfn + BigInt(prev.pages) === pfn) {
      prev.pages += pages;
      prev.end = end;
    } else {
      this.entries.splice(i, 0, { iova, pages, pfn, prot, end });
    }
    this.mappedPages += pages;
    return true;
  }

  /** iommu_unmap of [iova, iova + size): returns the pages unmapped. */
  unmap(iova: Iova, size: bigint): number {
    const end = iova + size;
    const i = this.lowerBound(iova);
    let j = i;
    const keep: Entry[] = [];
    let removed = 0;
    while (j < this.entries.length && this.entries[j]!.iova < end) {
      const e = this.entries[j]!;
      const eEnd = this.endOf(e);
      const cutStart = e.iova > iova ? e.iova : iova;
      const cutEnd = eEnd < end ? eEnd : end;
      removed += Number((cutEnd - cutStart) >> this.pageShift);
      if (e.iova < iova) {
        keep.push({ iova: e.iova, pages: Number((iova - e.iova) >> this.pageShift), pfn: e.pfn, prot: e.prot, end: iova });
      }
      if (eEnd > end) {
        const skip = (end - e.iova) >> this.pageShift;
        keep.push({ iova: end as Iova, pages: Number((eEnd - end) >> this.pageShift), pfn: (e.pfn + skip) as Pfn, prot: e.prot, end: eEnd });
      }
      j++;
    }
    this.entries.splice(i, j - i, ...keep);
    this.mappedPages -= removed;
    return removed;
  }

  /** Entries overlapping [iova, iova + size), clipped to it. */
  entriesIn(iova: Iova, size: bigint): PtEntry[] {
    const end = iova + size;
    const out: PtEntry[] = [];
    for (let i = this.lowerBound(iova); i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.iova >= end) break;
      const eEnd = this.endOf(e);
      const s = e.iova > iova ? e.iova : iova;
      const t = eEnd < end ? eEnd : end;
      out.push({ iova: s as Iova, pages: Number((t - s) >> this.pageShift), pfn: (e.pfn + ((s - e.iova) >> this.pageShift)) as Pfn, prot: e.prot });
    }
    return out;
  }

  restore(entries: PtEntry[]): void {
    this.entries = entries.map((e) => ({ ...e, end: e.iova + (BigInt(e.pages) << this.pageShift) }));
    this.mappedPages = this.entries.reduce((n, e) => n + e.pages, 0);
  }
}
