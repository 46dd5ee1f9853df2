/**
 * A vfio_dma's pfn_list: the pages vendor drivers pinned through the
 * external API, keyed by iova. It keeps two facts the invariants need
 * without walking every vpfn after every event: how many vpfns are
 * non-reserved (the pages a per-vpfn charge counts) and the lowest and
 * highest iova held.
 */
import type { Vpfn } from './vfio-dma.js';

export class VpfnList {
  private readonly byIova = new Map<bigint, Vpfn>();
  /** Non-reserved vpfns held. */
  private nUnreserved = 0;
  /** Lowest and highest iova held; recomputed only after one of them is removed. */
  private lo = 0n;
  private hi = 0n;
  private boundsStale = false;

  get size(): number {
    return this.byIova.size;
  }

  /** Vpfns that are not reserved (pfnmap) pages: what a per-vpfn charge counts. */
  get unreserved(): number {
    return this.nUnreserved;
  }

  get(iova: bigint): Vpfn | undefined {
    return this.byIova.get(iova);
  }

  /** Lists a vpfn for an iova not held (vfio_add_to_pfn_list). */
  add(iova: bigint, v: Vpfn): void {
    const before = this.byIova.size;
    this.byIova.set(iova, v);
    if (this.byIova.size === before) throw new Error(`vpfn at iova 0x${iova.toString(16)} is already listed`);
    if (before === 0) {
      this.lo = iova;
      this.hi = iova;
      this.boundsStale = false;
    } else if (!this.boundsStale) {
      if (iova < this.lo) this.lo = iova;
      if (iova > this.hi) this.hi = iova;
    }
    if (!v.reserved) this.nUnreserved++;
  }

  /** Unlists the vpfn `v` held at `iova` (vfio_remove_from_pfn_list). */
  remove(iova: bigint, v: Vpfn): void {
    if (!this.byIova.delete(iova)) return;
    if (!v.reserved) this.nUnreserved--;
    if (iova === this.lo || iova === this.hi) this.boundsStale = true;
  }

  keys(): IterableIterator<bigint> {
    return this.byIova.keys();
  }

  values(): IterableIterator<Vpfn> {
    return this.byIova.values();
  }

  [Symbol.iterator](): IterableIterator<[bigint, Vpfn]> {
    return this.byIova.entries();
  }

  /** The lowest and highest iova held, or undefined when empty. */
  bounds(): { lo: bigint; hi: bigint } | undefined {
    if (this.byIova.size === 0) return undefined;
    if (this.boundsStale) {
      let lo: bigint | undefined;
      let hi = 0n;
      for (const at of this.byIova.keys()) {
        if (lo === undefined || at < lo) lo = at;
        if (at > hi) hi = at;
      }
      this.lo = lo!;
      this.hi = hi;
      this.boundsStale = false;
    }
    return { lo: this.lo, hi: this.hi };
  }
}
