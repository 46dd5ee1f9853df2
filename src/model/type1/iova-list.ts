/**
 * iova_list: the valid IOVA ranges of a container (inclusive [start, end]),
 * the domains' apertures intersected, minus the groups' reserved regions.
 * Pure functions over arrays, after vfio_iommu_aper_* and
 * vfio_iommu_resv_* in vfio_iommu_type1.c.
 */
import type { Iova } from '../units.js';
import type { DmaList } from './dma-list.js';

export interface IovaRange {
  start: Iova;
  end: Iova;
}

export const U64_END = ((1n << 64n) - 1n) as Iova;

/** vfio_iommu_aper_conflict: the new aperture is disjoint or would drop a mapping. */
export function aperConflict(list: readonly IovaRange[], dmas: DmaList, start: Iova, end: Iova): boolean {
  const first = list[0];
  const last = list[list.length - 1];
  if (!first || !last) return false;
  if (start > last.end || end < first.start) return true;
  if (start > first.start && dmas.find(first.start, start - first.start)) return true;
  if (end < last.end && dmas.find(end + 1n, last.end - end)) return true;
  return false;
}

/** vfio_iommu_aper_resize. */
export function aperResize(list: readonly IovaRange[], start: Iova, end: Iova): IovaRange[] {
  if (list.length === 0) return [{ start, end }];
  const out: IovaRange[] = [];
  for (const n of list) {
    if (n.end < start || n.start > end) continue;
    out.push({ start: n.start < start ? start : n.start, end: n.end > end ? end : n.end });
  }
  return out;
}

export interface ReservedWindow {
  start: Iova;
  end: Iova;
}

/** vfio_iommu_resv_conflict: an existing mapping overlaps a reserved window. */
export function resvConflict(dmas: DmaList, resv: readonly ReservedWindow[]): boolean {
  return resv.some((r) => dmas.find(r.start, r.end - r.start + 1n) !== undefined);
}

/** vfio_iommu_resv_exclude: undefined when nothing valid is left (-EINVAL). */
export function resvExclude(list: readonly IovaRange[], resv: readonly ReservedWindow[]): IovaRange[] | undefined {
  let cur: IovaRange[] = list.map((r) => ({ ...r }));
  for (const r of resv) {
    const next: IovaRange[] = [];
    for (const n of cur) {
      if (r.start > n.end || r.end < n.start) {
        next.push(n);
        continue;
      }
      if (r.start > n.start) next.push({ start: n.start, end: (r.start - 1n) as Iova });
      if (r.end < n.end) next.push({ start: (r.end + 1n) as Iova, end: n.end });
    }
    cur = next;
  }
  return cur.length === 0 ? undefined : cur;
}

/** vfio_iommu_iova_dma_valid: inside one range, or no list at all (mdev only). */
export function iovaDmaValid(list: readonly IovaRange[], start: bigint, end: bigint): boolean {
  if (list.length === 0) return true;
  return list.some((n) => start >= n.start && end <= n.end);
}
