/**
 * Distinct types for distinct quantities. Addresses and byte counts are
 * unsigned 64-bit values held exactly as bigint; page counts fit a double
 * exactly (2^64 / 4096 = 2^52) and are plain numbers.
 *
 * Range convention everywhere: `start + size`, i.e. half-open
 * [start, start + size). Only the trace's `aperture` and `reserved` windows
 * and GET_INFO's `iova_ranges` are inclusive, as in the kernel's uapi.
 */
export type Iova = bigint & { readonly __unit: 'iova' };
export type Vaddr = bigint & { readonly __unit: 'vaddr' };
export type Bytes = bigint & { readonly __unit: 'bytes' };
export type Pfn = bigint & { readonly __unit: 'pfn' };
export type Pages = number & { readonly __unit: 'pages' };

export const U64_MAX = (1n << 64n) - 1n;

export const iova = (v: bigint): Iova => v as Iova;
export const vaddr = (v: bigint): Vaddr => v as Vaddr;
export const bytes = (v: bigint): Bytes => v as Bytes;
export const pfn = (v: bigint): Pfn => v as Pfn;
export const pages = (v: number): Pages => v as Pages;

/** Bytes to pages for a size already known to be page aligned. */
export function toPages(size: Bytes, pageShift: bigint): Pages {
  return Number(size >> pageShift) as Pages;
}

export function pagesToBytes(n: Pages, pageShift: bigint): Bytes {
  return (BigInt(n) << pageShift) as Bytes;
}

export function hex(v: bigint): string {
  return '0x' + v.toString(16);
}
