/**
 * How many times each physical frame of a process is charged, as extents
 * with a count. Nothing in the kernel de-duplicates frames across vfio_dmas
 * or containers; this ledger is how pinledger sees it happen
 * (ACCT_SHARED_FRAMES) and how much it adds to the memlock need.
 */
export interface FrameSpan {
  pfn: bigint;
  pages: number;
}

interface Segment {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  count: number;
}

export class FrameLedger {
  /** Sorted, non-overlapping, count >= 1. */
  private segs: Segment[] = [];
  /** Pages charged beyond the first charge of their frame: sum of (count - 1) * pages. */
  duplicatePages = 0;

  private lowerBound(addr: bigint): number {
    let lo = 0;
    let hi = this.segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segs[mid]!.end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Splits segments so that `at` is a boundary. */
  private split(at: bigint): void {
    const i = this.lowerBound(at);
    const s = this.segs[i];
    if (s && s.start < at && s.end > at) {
      this.segs.splice(i + 1, 0, { start: at, end: s.end, count: s.count });
      s.end = at;
    }
  }

  /** Adds one charge to every frame of the span; returns the pages that were already charged. */
  add(span: FrameSpan): number {
    const start = span.pfn;
    const end = span.pfn + BigInt(span.pages);
    this.split(start);
    this.split(end);
    let i = this.lowerBound(start);
    let cursor = start;
    let already = 0;
    const inserts: { at: number; seg: Segment }[] = [];
    while (cursor < end) {
      const s = this.segs[i];
      if (!s || s.start >= end) {
        inserts.push({ at: i, seg: { start: cursor, end, count: 1 } });
        break;
      }
      if (s.start > cursor) inserts.push({ at: i, seg: { start: cursor, end: s.start, count: 1 } });
      s.count++;
      already += Number(s.end - s.start);
      cursor = s.end;
      i++;
    }
    for (let k = inserts.length - 1; k >= 0; k--) this.segs.splice(inserts[k]!.at, 0, inserts[k]!.seg);
    this.duplicatePages += already;
    this.merge(start, end);
    return already;
  }

  /** Removes one charge from every frame of the span. */
  remove(span: FrameSpan): void {
    const start = span.pfn;
    const end = span.pfn + BigInt(span.pages);
    this.split(start);
    this.split(end);
    let i = this.lowerBound(start);
    while (i < this.segs.length && this.segs[i]!.start < end) {
      const s = this.segs[i]!;
      if (s.count > 1) this.duplicatePages -= Number(s.end - s.start);
      s.count--;
      if (s.count === 0) this.segs.splice(i, 1);
      else i++;
    }
    this.merge(start, end);
  }

  /** Joins neighbours with equal counts around a changed range. */
  private merge(start: bigint, end: bigint): void {
    let i = Math.max(0, this.lowerBound(start) - 1);
    while (i < this.segs.length - 1) {
      const a = this.segs[i]!;
      const b = this.segs[i + 1]!;
      if (a.start > end) break;
      if (a.end === b.start && a.count === b.count) {
        a.end = b.end;
        this.segs.splice(i + 1, 1);
      } else i++;
    }
  }

  get segments(): number {
    return this.segs.length;
  }
}
