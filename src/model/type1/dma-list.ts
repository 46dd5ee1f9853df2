/**
 * The container's dma_list (an rb-tree in the kernel): vfio_dma entries
 * keyed by iova, non-overlapping, in a B+ tree, so a map or unmap costs
 * O(log n) however many mappings the container holds.
 */
import { BTree, compareBigint } from '../common/btree.js';
import type { VfioDma } from './vfio-dma.js';

export class DmaList {
  private tree = new BTree<bigint, VfioDma>(undefined, compareBigint);

  get count(): number {
    return this.tree.size;
  }

  /** Every vfio_dma in iova order. */
  all(): VfioDma[] {
    return this.tree.valuesArray();
  }

  /** The lowest dma ending above `addr`. */
  private firstEndingAbove(addr: bigint): VfioDma | undefined {
    const below = this.tree.getPairOrNextLower(addr)?.[1];
    return below && below.end > addr ? below : this.tree.nextHigherPair(addr)?.[1];
  }

  /** vfio_find_dma: the lowest dma overlapping [start, start + size); size 0 finds the one containing start. */
  find(start: bigint, size: bigint): VfioDma | undefined {
    const d = this.firstEndingAbove(start);
    const end = size === 0n ? start + 1n : start + size;
    return d && d.iova < end ? d : undefined;
  }

  /** The dma after `d` in iova order (rb_next). */
  next(d: VfioDma): VfioDma | undefined {
    return this.tree.nextHigherPair(d.iova)?.[1];
  }

  /** vfio_link_dma. */
  link(d: VfioDma): void {
    this.tree.set(d.iova, d);
  }

  /** vfio_unlink_dma. */
  unlink(d: VfioDma): void {
    if (this.tree.get(d.iova) === d) this.tree.delete(d.iova);
  }

  /** Dmas overlapping [start, start + size). */
  overlapping(start: bigint, size: bigint): VfioDma[] {
    const end = start + size;
    const out: VfioDma[] = [];
    for (let d = this.firstEndingAbove(start); d && d.iova < end; d = this.next(d)) out.push(d);
    return out;
  }

  static load(dmas: readonly VfioDma[]): DmaList {
    const l = new DmaList();
    for (const d of dmas) l.link(d);
    return l;
  }
}
