/**
 * An IOMMU domain's page table as extents: each entry maps a run of IOVA
 * pages to a run of contiguous frames with one prot. Entries live in a B+
 * tree keyed by iova, so its cost follows the number of runs mapped, never
 * the bytes, and a map or unmap costs O(log n) in the runs.
 */
import { BTree, compareBigint } from '../common/btree.js';
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

/** A saved page table. */
export interface SavedPageTable {
  pageShift: bigint;
  entries: PtEntry[];
}

export class PageTable {
  private tree = new BTree<bigint, Entry>(undefined, compareBigint);
  private mappedPages = 0;

  constructor(private readonly pageShift: bigint) {}

  get totalPages(): number {
    return this.mappedPages;
  }

  get size(): number {
    return this.tree.size;
  }

  /** The entries overlapping [iova, end), in order. */
  private overlapping(iova: bigint, end: bigint): Entry[] {
    const out: Entry[] = [];
    const below = this.tree.getPairOrNextLower(iova)?.[1];
    if (below && below.end > iova && below.iova < end) out.push(below);
    this.tree.forRange(iova, end, false, (k: bigint, e: Entry) => {
      if (k !== below?.iova) out.push(e);
    });
    return out;
  }

  /** iommu_map: fails (-EEXIST in the drivers) if any page is already mapped. */
  map(iova: Iova, pages: number, pfn: Pfn, prot: number): boolean {
    const end = iova + (BigInt(pages) << this.pageShift);
    if (this.overlapping(iova, end).length > 0) return false;
    const prev = this.tree.nextLowerPair(iova)?.[1];
    if (prev && prev.end === iova && prev.prot === prot && prev.pfn + BigInt(prev.pages) === pfn) {
      prev.pages += pages;
      prev.end = end;
    } else {
      this.tree.set(iova, { iova, pages, pfn, prot, end });
    }
    this.mappedPages += pages;
    return true;
  }

  /** iommu_unmap of [iova, iova + size): returns the pages unmapped. */
  unmap(iova: Iova, size: bigint): number {
    const end = iova + size;
    let removed = 0;
    for (const e of this.overlapping(iova, end)) {
      const cutStart = e.iova > iova ? e.iova : iova;
      const cutEnd = e.end < end ? e.end : end;
      removed += Number((cutEnd - cutStart) >> this.pageShift);
      this.tree.delete(e.iova);
      if (e.iova < iova) {
        this.tree.set(e.iova, { iova: e.iova, pages: Number((iova - e.iova) >> this.pageShift), pfn: e.pfn, prot: e.prot, end: iova });
      }
      if (e.end > end) {
        const skip = (end - e.iova) >> this.pageShift;
        this.tree.set(end, { iova: end as Iova, pages: Number((e.end - end) >> this.pageShift), pfn: (e.pfn + skip) as Pfn, prot: e.prot, end: e.end });
      }
    }
    this.mappedPages -= removed;
    return removed;
  }

  /** Entries overlapping [iova, iova + size), clipped to it. */
  entriesIn(iova: Iova, size: bigint): PtEntry[] {
    const end = iova + size;
    return this.overlapping(iova, end).map((e) => {
      const s = e.iova > iova ? e.iova : iova;
      const t = e.end < end ? e.end : end;
      return { iova: s as Iova, pages: Number((t - s) >> this.pageShift), pfn: (e.pfn + ((s - e.iova) >> this.pageShift)) as Pfn, prot: e.prot };
    });
  }

  save(): SavedPageTable {
    return { pageShift: this.pageShift, entries: this.tree.valuesArray().map(({ iova, pages, pfn, prot }) => ({ iova, pages, pfn, prot })) };
  }

  static load(saved: SavedPageTable): PageTable {
    const pt = new PageTable(saved.pageShift);
    for (const e of saved.entries) {
      pt.tree.set(e.iova, { ...e, end: e.iova + (BigInt(e.pages) << saved.pageShift) });
      pt.mappedPages += e.pages;
    }
    return pt;
  }
}
