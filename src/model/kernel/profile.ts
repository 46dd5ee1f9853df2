/**
 * A kernel profile: what differs between the kernels pinledger emulates,
 * behind one interface. The shared model reads a profile's fields; it never
 * asks which kernel it has. Profiles are chosen from the header's `kernel`
 * (uname -r) or `--kernel` (choose.ts).
 */

/**
 * What a FOLL_LONGTERM pin without FOLL_WRITE (a READ-only DMA map or
 * external pin) finds in private anonymous memory that was never written:
 * - `zero-page`: the shared zero page. vfio's vaddr_get_pfns takes it, and
 *   is_invalid_reserved_pfn() says it is reserved, so vfio_pin_pages_remote
 *   and vfio_pin_page_external pin it without a charge (Linux before 6.2).
 * - `unshare`: GUP breaks COW first (FAULT_FLAG_UNSHARE) and pins a new,
 *   exclusive anonymous page, which is charged like any other (Linux 6.2
 *   and later, since commit 84209e87c696 "mm/gup: reliable R/O long-term
 *   pinning in COW mappings", bisected as the change by Alex Williamson in
 *   "Revert 'vfio/type1: Unpin zero pages'", 2024).
 */
export type UntouchedReadPin = 'zero-page' | 'unshare';

export interface KernelProfile {
  /** Stable name, saved with the replay state: `linux-6.1`, `linux-6.12`, `unspecified`. */
  readonly id: string;
  /** The releases it stands for, for messages. */
  readonly releases: string;
  readonly untouchedReadPin: UntouchedReadPin;
}

/** A kernel release as uname -r prints it: its major and minor numbers. */
export interface KernelRelease {
  major: number;
  minor: number;
}

/**
 * "6.1.0-57-amd64" (Debian), "6.12.48+deb12-amd64", "6.8.0-45-generic"
 * (Ubuntu), "6.2", "v6.12.1": major and minor; anything else undefined.
 */
export function parseKernelRelease(text: string): KernelRelease | undefined {
  const m = /^v?(\d+)\.(\d+)(?:[.\-+~_].*)?$/.exec(text.trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]) };
}
