/**
 * How many times each physical frame of a process is charged, as extents
 * with a count. Nothing in the kernel de-duplicates frames across vfio_dmas
 * or containers; this ledger is how pinledger sees it happen
 * (ACCT_SHARED_FRAMES) and how much it adds to the memlock need.
 *
 * The extents live in a B+ tree keyed by their first frame, so a charge
 * costs O(log n) in the number of extents, however many pins are live.
 *
 * Frames are grouped by the bits above 64 of their number: 0 for host
 * frames from the trace, one group per process and address space for the
 * synthetic frames of undescribed memory (address-space.ts). Within a
 * group the low 64 bits are a page number below 2^52 (an address shifted
 * by at least 12), exact as a JavaScript number, and a span never crosses
 * groups.
 */
import { BTree } from '../common/btree.js';

export interface FrameSpan {
  pfn: bigint;
  pages: number;
}

interface Segment {
  start: number;
  /** Exclusive. */
  end: number;
  count: number;
}

/** A saved ledger: [start, end, count] per extent, in order. */
export type SavedFrameLedger = { segments: [bigint, bigint, number][] };

/** One group's extents. */
class FrameSpace {
  /** Non-overlapping extents by start, count >= 1. */
  private segs = new BTree<number, Segment>(undefined, (a: number, b: number) => a - b);
  /** Pages charged beyond the first charge of their frame, in this group. */
  duplicatePages = 0;

  /**
   * The extents that overlap or touch [start, end], in order: the one
   * before start (it may hold start or end at it) and every one starting
   * in [start, end]. One lookup and one range walk.
   */
  private window(start: number, end: number): Segment[] {
    const out: Segment[] = [];
    const before = this.segs.getPairOrNextLower(start - 1)?.[1];
    if (before && before.end >= start) out.push(before);
    this.segs.forRange(start, end, true, (_k: number, s: Segment) => {
      out.push(s);
    });
    return out;
  }

  /**
   * Replaces the extents of `old` with `next` (coalesced first): extents
   * keeping their start are updated in place, so the common case of a
   * page joining its neighbour costs no tree update at all.
   */
  private rewrite(old: Segment[], next: Segment[]): void {
    const merged: Segment[] = [];
    for (const s of next) {
      const last = merged[merged.length - 1];
      if (last && last.end === s.start && last.count === s.count) last.end = s.end;
      else merged.push(s);
    }
    // `old` is the few extents of one window: a scan beats a map.
    const kept = new Array<boolean>(old.length).fill(false);
    for (const s of merged) {
      const i = old.findIndex((o) => o.start === s.start);
      if (i >= 0) {
        old[i]!.end = s.end;
        old[i]!.count = s.count;
        kept[i] = true;
      } else this.segs.set(s.start, { start: s.start, end: s.end, count: s.count });
    }
    old.forEach((o, i) => {
      if (!kept[i]) this.segs.delete(o.start);
    });
  }

  /** Adds one charge to every frame of [start, end); returns the pages that were already charged. */
  add(start: number, end: number): number {
    const old = this.window(start, end);
    const next: Segment[] = [];
    let cursor = start;
    let already = 0;
    for (const s of old) {
      if (s.start >= end && cursor < end) {
        next.push({ start: cursor, end, count: 1 });
        cursor = end;
      }
      if (s.end <= start || s.start >= end) {
        next.push({ start: s.start, end: s.end, count: s.count });
        continue;
      }
      if (s.start < start) next.push({ start: s.start, end: start, count: s.count });
      if (s.start > cursor) next.push({ start: cursor, end: s.start, count: 1 });
      const from = Math.max(s.start, start);
      const to = Math.min(s.end, end);
      next.push({ start: from, end: to, count: s.count + 1 });
      already += to - from;
      cursor = to;
      if (s.end > end) next.push({ start: end, end: s.end, count: s.count });
    }
    if (cursor < end) next.push({ start: cursor, end, count: 1 });
    this.rewrite(old, next);
    this.duplicatePages += already;
    return already;
  }

  /** Removes one charge from every frame of [start, end); frames not charged are left alone. */
  remove(start: number, end: number): void {
    const old = this.window(start, end);
    const next: Segment[] = [];
    for (const s of old) {
      if (s.end <= start || s.start >= end) {
        next.push({ start: s.start, end: s.end, count: s.count });
        continue;
      }
      if (s.start < start) next.push({ start: s.start, end: start, count: s.count });
      const from = Math.max(s.start, start);
      const to = Math.min(s.end, end);
      if (s.count > 1) {
        this.duplicatePages -= to - from;
        next.push({ start: from, end: to, count: s.count - 1 });
      }
      if (s.end > end) next.push({ start: end, end: s.end, count: s.count });
    }
    this.rewrite(old, next);
  }

  get segments(): number {
    return this.segs.size;
  }

  *saved(high: bigint): Generator<[bigint, bigint, number]> {
    for (const s of this.segs.values()) yield [(high << 64n) | BigInt(s.start), (high << 64n) | BigInt(s.end), s.count];
  }

  restore(start: number, end: number, count: number): void {
    this.segs.set(start, { start, end, count });
    this.duplicatePages += (count - 1) * (end - start);
  }
}

const LOW = (1n << 64n) - 1n;

/** Charges or uncharges not yet applied: one contiguous run of one sign in one group. */
interface PendingRun {
  space: FrameSpace;
  high: bigint;
  start: number;
  end: number;
  sign: 1 | -1;
}

/**
 * The ledger of one process. A pin call charges page by page; adjacent
 * pages of one sign are gathered into one run and applied when anything
 * else happens or anything is read, so sixteen pages cost one tree update.
 * Gathering disjoint adjacent spans of one sign changes no count.
 */
export class FrameLedger {
  private spaces = new Map<bigint, FrameSpace>();
  /** Pages found already charged by adds since the last take. */
  private sharedAdded = 0;
  private pending: PendingRun | undefined;

  private space(high: bigint): FrameSpace {
    let sp = this.spaces.get(high);
    if (!sp) {
      sp = new FrameSpace();
      this.spaces.set(high, sp);
    }
    return sp;
  }

  private queue(span: FrameSpan, sign: 1 | -1): void {
    const high = span.pfn >> 64n;
    const start = Number(span.pfn & LOW);
    const p = this.pending;
    if (p && p.sign === sign && p.high === high && p.end === start) {
      p.end += span.pages;
      return;
    }
    this.flush();
    this.pending = { space: this.space(high), high, start, end: start + span.pages, sign };
  }

  /** Applies the pending run. */
  private flush(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    if (p.sign > 0) this.sharedAdded += p.space.add(p.start, p.end);
    else p.space.remove(p.start, p.end);
  }

  /** Adds one charge to every frame of the span. */
  add(span: FrameSpan): void {
    this.queue(span, 1);
  }

  /** Removes one charge from every frame of the span. */
  remove(span: FrameSpan): void {
    this.queue(span, -1);
  }

  /** Pages charged beyond the first charge of their frame: sum of (count - 1) * pages over every group. */
  get duplicatePages(): number {
    this.flush();
    let n = 0;
    for (const sp of this.spaces.values()) n += sp.duplicatePages;
    return n;
  }

  /** Pages that adds found already charged since the last call (ACCT_SHARED_FRAMES). */
  takeSharedAdded(): number {
    this.flush();
    const n = this.sharedAdded;
    this.sharedAdded = 0;
    return n;
  }

  get segments(): number {
    this.flush();
    let n = 0;
    for (const sp of this.spaces.values()) n += sp.segments;
    return n;
  }

  save(): SavedFrameLedger {
    this.flush();
    const segments: [bigint, bigint, number][] = [];
    for (const [high, sp] of this.spaces) segments.push(...sp.saved(high));
    return { segments };
  }

  static load(saved: SavedFrameLedger): FrameLedger {
    const l = new FrameLedger();
    for (const [start, end, count] of saved.segments) l.space(start >> 64n).restore(Number(start & LOW), Number(end - (start & ~LOW)), count);
    return l;
  }
}
