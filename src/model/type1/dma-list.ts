/**
 * The container's dma_list (an rb-tree in the kernel): vfio_dma entries
 * sorted by iova, non-overlapping. Lookups are binary searches.
 */
import { type VfioDma, dmaEnd } from './vfio-dma.js';

export class DmaList {
  private items: VfioDma[] = [];

  get count(): number {
    return this.items.length;
  }

  all(): readonly VfioDma[] {
    return this.items;
  }

  /** Index of the first dma whose end is above `addr`. */
  private lowerBound(addr: bigint): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (dmaEnd(this.items[mid]!) <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** vfio_find_dma: any dma overlapping [start, start + size); size 0 finds the one containing start. */
  find(start: bigint, size: bigint): VfioDma | undefined {
    const d = this.items[this.lowerBound(start)];
    if (!d) return undefined;
    const end = size === 0n ? start + 1n : start + size;
    return d.iova < end ? d : undefined;
  }

  /** vfio_find_dma_first_node: index of the first dma overlapping the range, or -1. */
  firstIndex(start: bigint, size: bigint): number {
    const i = this.lowerBound(start);
    const d = this.items[i];
    if (!d) return -1;
    if (size !== 0n && d.iova >= start + size) return -1;
    return i;
  }

  at(i: number): VfioDma | undefined {
    return this.items[i];
  }

  indexOf(d: VfioDma): number {
    const i = this.lowerBound(d.iova);
    return this.items[i] === d ? i : -1;
  }

  /** vfio_link_dma. */
  link(d: VfioDma): void {
    this.items.splice(this.lowerBound(d.iova), 0, d);
  }

  /** vfio_unlink_dma. */
  unlink(d: VfioDma): void {
    const i = this.indexOf(d);
    if (i >= 0) this.items.splice(i, 1);
  }

  /** Dmas overlapping [start, start + size). */
  overlapping(start: bigint, size: bigint): VfioDma[] {
    const out: VfioDma[] = [];
    const end = start + size;
    for (let i = this.lowerBound(start); i < this.items.length; i++) {
      const d = this.items[i]!;
      if (d.iova >= end) break;
      out.push(d);
    }
    return out;
  }
}
