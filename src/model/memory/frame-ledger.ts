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
export type SavedFrameLedger = { segments: [bigint, bigint, number][]; duplicatePages: number };

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
  }
}

const LOW = (1n << 64n) - 1n;

export class FrameLedger {
  private spaces = new Map<bigint, FrameSpace>();
  /** Pages charged beyond the first charge of their frame: sum of (count - 1) * pages. */
  duplicatePages = 0;

  private space(high: bigint): FrameSpace {
    let sp = this.spaces.get(high);
    if (!sp) {
      sp = new FrameSpace();
      this.spaces.set(high, sp);
    }
    return sp;
  }

  /** Adds one charge to every frame of the span; returns the pages that were already charged. */
  add(span: FrameSpan): number {
    const start = Number(span.pfn & LOW);
    const already = this.space(span.pfn >> 64n).add(start, start + span.pages);
    this.duplicatePages += already;
    return already;
  }

  /** Removes one charge from every frame of the span. */
  remove(span: FrameSpan): void {
    const sp = this.space(span.pfn >> 64n);
    const before = sp.duplicatePages;
    const start = Number(span.pfn & LOW);
    sp.remove(start, start + span.pages);
    this.duplicatePages += sp.duplicatePages - before;
  }

  get segments(): number {
    let n = 0;
    for (const sp of this.spaces.values()) n += sp.segments;
    return n;
  }

  save(): SavedFrameLedger {
    const segments: [bigint, bigint, number][] = [];
    for (const [high, sp] of this.spaces) segments.push(...sp.saved(high));
    return { segments, duplicatePages: this.duplicatePages };
  }

  static load(saved: SavedFrameLedger): FrameLedger {
    const l = new FrameLedger();
    for (const [start, end, count] of saved.segments) l.space(start >> 64n).restore(Number(start & LOW), Number(end - (start & ~LOW)), count);
    l.duplicatePages = saved.duplicatePages;
    return l;
  }
}
