/**
 * A process's address space as far as pinning sees it (mm_struct, VMAs):
 * described regions from `mmap` events, holes left by `munmap`, and
 * everything else undescribed anonymous memory with synthetic, stable frames.
 * Regions are extents: a 1 TiB mapping is one entry.
 */
import type { Backing } from '../events.js';
import { type Bytes, type Pfn, type Vaddr, pfn as toPfn } from '../units.js';

export interface Region {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  /** 'hole' is a range gone from the address space (munmap). */
  backing: Backing | 'hole';
  /** Frame of `start`, when the trace gave one. */
  pfn?: bigint;
}

/** A run of pages with contiguous frames and one kind of memory. */
export interface FrameRun {
  /** Pages in the run. */
  pages: number;
  /** Frame of the first page. */
  pfn: Pfn;
  /** Device memory (VM_PFNMAP): pinned without a charge (is_invalid_reserved_pfn). */
  reserved: boolean;
}

export type Translation = { ok: true; runs: FrameRun[] } | { ok: false; faultAt: Vaddr };

/**
 * Frames for memory the trace never described, and for described memory
 * without a `pfn`: distinct per (pid, virtual page), never shared, stable.
 * They live above 2^64 so they can never collide with a frame a trace names.
 */
function syntheticPfn(pid: number, vpage: bigint, space: number): bigint {
  return (BigInt(space) << 96n) | (BigInt(pid + 1) << 64n) | vpage;
}

export class AddressSpace {
  /** Sorted by start, non-overlapping. */
  private regions: Region[] = [];

  constructor(
    readonly pid: number,
    private readonly pageShift: bigint,
  ) {}

  /** A new mapping replaces whatever was at that range (MAP_FIXED). */
  map(start: Vaddr, size: Bytes, backing: Backing, pfn?: Pfn): void {
    this.carve(start, start + size);
    const r: Region = { start, end: start + size, backing };
    if (pfn !== undefined) r.pfn = pfn;
    this.insert(r);
  }

  unmap(start: Vaddr, size: Bytes): void {
    this.carve(start, start + size);
    this.insert({ start, end: start + size, backing: 'hole' });
  }

  all(): readonly Region[] {
    return this.regions;
  }

  restore(regions: Region[]): void {
    this.regions = regions.map((r) => ({ ...r }));
  }

  private lowerBound(addr: bigint): number {
    // First region whose end > addr.
    let lo = 0;
    let hi = this.regions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.regions[mid]!.end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private insert(r: Region): void {
    const i = this.lowerBound(r.start);
    this.regions.splice(i, 0, r);
  }

  /** Removes [start, end) from every region, splitting at the edges. */
  private carve(start: bigint, end: bigint): void {
    let i = this.lowerBound(start);
    const keep: Region[] = [];
    let j = i;
    while (j < this.regions.length && this.regions[j]!.start < end) {
      const r = this.regions[j]!;
      if (r.start < start) keep.push(this.slice(r, r.start, start));
      if (r.end > end) keep.push(this.slice(r, end, r.end));
      j++;
    }
    this.regions.splice(i, j - i, ...keep);
  }

  private slice(r: Region, start: bigint, end: bigint): Region {
    const s: Region = { start, end, backing: r.backing };
    if (r.pfn !== undefined) s.pfn = r.pfn + ((start - r.start) >> this.pageShift);
    return s;
  }

  private framesOf(r: Region | undefined, addr: bigint): { pfn: bigint; reserved: boolean } {
    const vpage = addr >> this.pageShift;
    if (!r) return { pfn: syntheticPfn(this.pid, vpage, 0), reserved: false };
    const reserved = r.backing === 'pfnmap';
    if (r.pfn !== undefined) return { pfn: r.pfn + ((addr - r.start) >> this.pageShift), reserved };
    return { pfn: syntheticPfn(this.pid, vpage, reserved ? 1 : 0), reserved };
  }

  /**
   * The frames behind [start, start + npages pages), as runs of contiguous
   * frames of one kind (vaddr_get_pfns / pin_user_pages_remote). A page in a
   * hole faults (-EFAULT in the kernel).
   */
  translate(start: Vaddr, npages: number): Translation {
    const runs: FrameRun[] = [];
    const end = start + (BigInt(npages) << this.pageShift);
    let addr: bigint = start;
    let i = this.lowerBound(addr);
    while (addr < end) {
      const r = this.regions[i];
      let chunkEnd: bigint;
      let region: Region | undefined;
      if (r && r.start <= addr) {
        if (r.backing === 'hole') return { ok: false, faultAt: addr as Vaddr };
        region = r;
        chunkEnd = r.end < end ? r.end : end;
        i++;
      } else {
        chunkEnd = r && r.start < end ? r.start : end;
      }
      const f = this.framesOf(region, addr);
      const n = Number((chunkEnd - addr) >> this.pageShift);
      const last = runs[runs.length - 1];
      if (last && last.reserved === f.reserved && last.pfn + BigInt(last.pages) === f.pfn) {
        last.pages += n;
      } else {
        runs.push({ pages: n, pfn: toPfn(f.pfn), reserved: f.reserved });
      }
      addr = chunkEnd;
    }
    return { ok: true, runs };
  }
}
