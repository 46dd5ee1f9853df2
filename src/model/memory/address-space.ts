/**
 * A process's address space as far as pinning and mlock see it (mm_struct,
 * VMAs): described regions from `mmap` events, holes left by `munmap`, and
 * everything else undescribed anonymous memory with synthetic, stable frames.
 * Regions are extents: a 1 TiB mapping is one entry. A region also says
 * whether it is VM_LOCKED (counted in locked_vm) and whether the trace shows
 * it untouched since its mmap (private anonymous memory never faulted in:
 * a read finds the shared zero page).
 */
import type { Backing } from '../events.js';
import type { UntouchedReadPin } from '../kernel/profile.js';
import { type Bytes, type Pfn, type Vaddr, pfn as toPfn } from '../units.js';

export interface Region {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  /** 'hole' is a range gone from the address space (munmap). */
  backing: Backing | 'hole';
  /** Frame of `start`, when the trace gave one. */
  pfn?: bigint;
  /** VM_LOCKED and counted in locked_vm (mlock_fixup never counts pfnmap or hugetlb ranges). */
  locked?: boolean;
  /** Private anonymous memory the trace shows never written since its mmap. */
  untouched?: boolean;
  /** PROT_WRITE, when the trace said (absent: taken as writable). */
  writable?: boolean;
}

/** What a new mapping is, beyond its backing (version 2 mmap fields). */
export interface MapOptions {
  pfn?: Pfn;
  locked?: boolean;
  untouched?: boolean;
  writable?: boolean;
}

/** A run of pages with contiguous frames and one kind of memory. */
export interface FrameRun {
  /** Pages in the run. */
  pages: number;
  /** Frame of the first page. */
  pfn: Pfn;
  /** Not charged when pinned (is_invalid_reserved_pfn): device memory, or the shared zero page on kernels before 6.2. */
  reserved: boolean;
  /** Device memory (VM_PFNMAP, a BAR): some designs cannot pin it at all. */
  pfnmap: boolean;
}

export type Translation = { ok: true; runs: FrameRun[] } | { ok: false; faultAt: Vaddr };

/** How a pin reaches the pages: FOLL_WRITE or not, and what the kernel does with the zero page. */
export interface PinAccess {
  write: boolean;
  untouchedRead: UntouchedReadPin;
}

/** A pin that writes: never finds the zero page (the default for designs that do not say). */
const WRITE_PIN: PinAccess = { write: true, untouchedRead: 'unshare' };

/** Frame spaces of synthetic frames: RAM, device memory, the zero page. */
const SPACE_RAM = 0;
const SPACE_DEVICE = 1;
const SPACE_ZERO = 2;
/** Each new address space of a pid (exec) gets its own synthetic frames. */
const SPACES_PER_GENERATION = 4;

/**
 * Frames for memory the trace never described, and for described memory
 * without a `pfn`: distinct per (pid, address space, virtual page), never
 * shared, stable. They live above 2^64 so they can never collide with a
 * frame a trace names.
 */
function syntheticPfn(pid: number, vpage: bigint, space: number): bigint {
  return (BigInt(space) << 96n) | (BigInt(pid + 1) << 64n) | vpage;
}

/** Kinds of memory mlock counts (mlock_fixup skips VM_SPECIAL and hugetlb VMAs). */
export function lockable(backing: Backing | 'hole'): boolean {
  return backing !== 'hole' && backing !== 'pfnmap' && backing !== 'hugetlb';
}

export class AddressSpace {
  /** Sorted by start, non-overlapping. */
  private regions: Region[] = [];

  /**
   * @param generation 0 for the first address space of the pid, one more
   *   after each exec (a new mm: new frames).
   */
  constructor(
    readonly pid: number,
    private readonly pageShift: bigint,
    readonly generation = 0,
  ) {}

  /**
   * A new mapping replaces whatever was at that range (MAP_FIXED). Returns
   * the locked pages it replaced (munmap of VM_LOCKED VMAs uncharges them).
   */
  map(start: Vaddr, size: Bytes, backing: Backing, opts: MapOptions = {}): number {
    const unlocked = this.carve(start, start + size);
    const r: Region = { start, end: start + size, backing };
    if (opts.pfn !== undefined) r.pfn = opts.pfn;
    if (opts.locked && lockable(backing)) r.locked = true;
    if (opts.untouched) r.untouched = true;
    if (opts.writable !== undefined) r.writable = opts.writable;
    this.insert(r);
    return unlocked;
  }

  /** Returns the locked pages it removed. */
  unmap(start: Vaddr, size: Bytes): number {
    const unlocked = this.carve(start, start + size);
    this.insert({ start, end: start + size, backing: 'hole' });
    return unlocked;
  }

  all(): readonly Region[] {
    return this.regions;
  }

  restore(regions: Region[]): void {
    this.regions = regions.map((r) => ({ ...r }));
  }

  /**
   * The address space a forked child starts with (dup_mmap): the same
   * regions, nothing locked (VM_LOCKED is not inherited), private memory on
   * the child's own frames, `shared` and device memory on the same frames.
   */
  forkFor(childPid: number): AddressSpace {
    const child = new AddressSpace(childPid, this.pageShift);
    child.regions = this.regions.map((r) => {
      const c: Region = { start: r.start, end: r.end, backing: r.backing };
      if (r.pfn !== undefined && (r.backing === 'shared' || r.backing === 'pfnmap')) c.pfn = r.pfn;
      if (r.untouched) c.untouched = true;
      if (r.writable !== undefined) c.writable = r.writable;
      return c;
    });
    return child;
  }

  /** Pages of [start, end) that are VM_LOCKED (count_mm_mlocked_page_nr). */
  lockedPagesIn(start: bigint, end: bigint): number {
    let n = 0;
    for (let i = this.lowerBound(start); i < this.regions.length && this.regions[i]!.start < end; i++) {
      const r = this.regions[i]!;
      if (!r.locked) continue;
      n += this.pagesBetween(r.start > start ? r.start : start, r.end < end ? r.end : end);
    }
    return n;
  }

  /** Whether [start, end) reaches a hole: apply_vma_lock_flags' -ENOMEM for a range with no VMA. */
  hasHole(start: bigint, end: bigint): boolean {
    for (let i = this.lowerBound(start); i < this.regions.length && this.regions[i]!.start < end; i++) {
      if (this.regions[i]!.backing === 'hole') return true;
    }
    return false;
  }

  /** Pages described by mappings (holes excluded): a lower bound of total_vm. */
  describedPages(): number {
    let n = 0;
    for (const r of this.regions) if (r.backing !== 'hole') n += this.pagesBetween(r.start, r.end);
    return n;
  }

  /**
   * Sets or clears VM_LOCKED over [start, end) (mlock_fixup), making
   * undescribed memory in it an explicit anonymous region (same frames).
   * Returns the pages newly locked (lock) or unlocked (unlock). `populate`
   * faults the pages in, as mlock without ONFAULT does (a writable mapping
   * is write-faulted: populate_vma_page_range).
   */
  setLocked(start: bigint, end: bigint, lock: boolean, populate: boolean): number {
    this.describe(start, end);
    let changed = 0;
    for (let i = this.lowerBound(start); i < this.regions.length && this.regions[i]!.start < end; i++) {
      const r = this.regions[i]!;
      if (!lockable(r.backing)) continue;
      if (populate && r.writable !== false) delete r.untouched;
      if (Boolean(r.locked) === lock) continue;
      changed += this.pagesBetween(r.start, r.end);
      if (lock) r.locked = true;
      else delete r.locked;
    }
    this.coalesce(start, end);
    return changed;
  }

  /** Described pages mlockall would newly lock. */
  unlockedLockablePages(): number {
    let n = 0;
    for (const r of this.regions) if (lockable(r.backing) && !r.locked) n += this.pagesBetween(r.start, r.end);
    return n;
  }

  /** mlockall(MCL_CURRENT): every described lockable region; returns the pages newly locked. */
  lockAll(populate: boolean): number {
    let n = 0;
    for (const r of this.regions) {
      if (!lockable(r.backing)) continue;
      if (populate && r.writable !== false) delete r.untouched;
      if (r.locked) continue;
      r.locked = true;
      n += this.pagesBetween(r.start, r.end);
    }
    return n;
  }

  /** munlockall: returns the pages unlocked. */
  unlockAll(): number {
    let n = 0;
    for (const r of this.regions) {
      if (!r.locked) continue;
      delete r.locked;
      n += this.pagesBetween(r.start, r.end);
    }
    return n;
  }

  /** The pages of [start, end) are written: no longer the zero page. */
  touch(start: bigint, end: bigint): void {
    let any = false;
    for (let i = this.lowerBound(start); i < this.regions.length && this.regions[i]!.start < end; i++) {
      if (this.regions[i]!.untouched) any = true;
    }
    if (!any) return;
    this.split(start);
    this.split(end);
    for (let i = this.lowerBound(start); i < this.regions.length && this.regions[i]!.start < end; i++) {
      delete this.regions[i]!.untouched;
    }
    this.coalesce(start, end);
  }

  private pagesBetween(start: bigint, end: bigint): number {
    return Number((end - start) >> this.pageShift);
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

  /** Removes [start, end) from every region, splitting at the edges; returns the locked pages removed. */
  private carve(start: bigint, end: bigint): number {
    const i = this.lowerBound(start);
    const keep: Region[] = [];
    let unlocked = 0;
    let j = i;
    while (j < this.regions.length && this.regions[j]!.start < end) {
      const r = this.regions[j]!;
      if (r.locked) unlocked += this.pagesBetween(r.start > start ? r.start : start, r.end < end ? r.end : end);
      if (r.start < start) keep.push(this.slice(r, r.start, start));
      if (r.end > end) keep.push(this.slice(r, end, r.end));
      j++;
    }
    this.regions.splice(i, j - i, ...keep);
    return unlocked;
  }

  /** Splits the region holding `at` so that a region starts there. */
  private split(at: bigint): void {
    const i = this.lowerBound(at);
    const r = this.regions[i];
    if (!r || r.start >= at) return;
    this.regions.splice(i, 1, this.slice(r, r.start, at), this.slice(r, at, r.end));
  }

  /** Fills the undescribed gaps of [start, end) with anonymous regions (the frames undescribed memory has). */
  private describe(start: bigint, end: bigint): void {
    this.split(start);
    this.split(end);
    let at = start;
    let i = this.lowerBound(start);
    while (at < end) {
      const r = this.regions[i];
      if (r && r.start <= at) {
        at = r.end;
        i++;
        continue;
      }
      const gapEnd = r && r.start < end ? r.start : end;
      this.regions.splice(i, 0, { start: at, end: gapEnd, backing: 'anon' });
      i++;
      at = gapEnd;
    }
  }

  /** Joins neighbours around [start, end) that are the same kind of memory, so splits do not pile up. */
  private coalesce(start: bigint, end: bigint): void {
    let i = Math.max(0, this.lowerBound(start) - 1);
    while (i + 1 < this.regions.length && this.regions[i]!.start <= end) {
      const a = this.regions[i]!;
      const b = this.regions[i + 1]!;
      const contiguousFrames = a.pfn === undefined ? b.pfn === undefined : b.pfn === a.pfn + ((b.start - a.start) >> this.pageShift);
      if (
        a.end === b.start &&
        a.backing === b.backing &&
        contiguousFrames &&
        Boolean(a.locked) === Boolean(b.locked) &&
        Boolean(a.untouched) === Boolean(b.untouched) &&
        a.writable === b.writable
      ) {
        a.end = b.end;
        this.regions.splice(i + 1, 1);
      } else i++;
    }
  }

  private slice(r: Region, start: bigint, end: bigint): Region {
    const s: Region = { ...r, start, end };
    if (r.pfn !== undefined) s.pfn = r.pfn + ((start - r.start) >> this.pageShift);
    return s;
  }

  private space(kind: number): number {
    return kind + SPACES_PER_GENERATION * (this.generation ?? 0);
  }

  private framesOf(r: Region | undefined, addr: bigint, zero: boolean): { pfn: bigint; reserved: boolean; pfnmap: boolean } {
    const vpage = addr >> this.pageShift;
    if (!r) return { pfn: syntheticPfn(this.pid, vpage, this.space(SPACE_RAM)), reserved: false, pfnmap: false };
    if (zero) return { pfn: syntheticPfn(this.pid, vpage, this.space(SPACE_ZERO)), reserved: true, pfnmap: false };
    const pfnmap = r.backing === 'pfnmap';
    if (r.pfn !== undefined) return { pfn: r.pfn + ((addr - r.start) >> this.pageShift), reserved: pfnmap, pfnmap };
    return { pfn: syntheticPfn(this.pid, vpage, this.space(pfnmap ? SPACE_DEVICE : SPACE_RAM)), reserved: pfnmap, pfnmap };
  }

  /**
   * The frames behind [start, start + npages pages), as runs of contiguous
   * frames of one kind (vaddr_get_pfns / pin_user_pages_remote). A page in a
   * hole faults (-EFAULT in the kernel). Untouched memory: a write pin
   * faults real pages in, and so does a read pin on a kernel that unshares
   * the zero page; a read pin on one that does not finds the zero page
   * (reserved; the model numbers each such page apart, the kernel maps one
   * shared frame, which changes nothing in the accounting). The pages
   * faulted in stay so even if the pin then fails, as in the kernel.
   */
  translate(start: Vaddr, npages: number, access: PinAccess = WRITE_PIN): Translation {
    const runs: FrameRun[] = [];
    const end = start + (BigInt(npages) << this.pageShift);
    let addr: bigint = start;
    let i = this.lowerBound(addr);
    let faultsIn = false;
    const zeroRead = !access.write && access.untouchedRead === 'zero-page';
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
      const untouched = region?.untouched === true;
      if (untouched && !zeroRead) faultsIn = true;
      const f = this.framesOf(region, addr, untouched && zeroRead);
      const n = Number((chunkEnd - addr) >> this.pageShift);
      const last = runs[runs.length - 1];
      if (last && last.reserved === f.reserved && last.pfnmap === f.pfnmap && last.pfn + BigInt(last.pages) === f.pfn) {
        last.pages += n;
      } else {
        runs.push({ pages: n, pfn: toPfn(f.pfn), reserved: f.reserved, pfnmap: f.pfnmap });
      }
      addr = chunkEnd;
    }
    if (faultsIn) this.touch(start, end);
    return { ok: true, runs };
  }
}
