/**
 * Why an ACCT_MISMATCH may be the zero page. A trace without mmap events
 * cannot show that memory was never written, so the model charges it (its
 * assumption: touched anonymous memory); Linux before 6.2 pins the shared
 * zero page for a READ-only map of such memory and charges nothing (QEMU's
 * ROMs at every q35 start: 128 pages). When the model's excess equals the
 * pages of one READ-only mapping of the process, or of all of them, the
 * finding says so.
 */
import { IOMMU_READ } from '../iommu/topology.js';
import type { VfioCore } from '../vfio/core.js';

export interface ZeroPageHint {
  /** Appended to the finding's message. */
  text: string;
  /** The READ-only mappings that add up to the difference. */
  mappings: string[];
}

export function zeroPageHint(core: VfioCore, pid: number, excess: number, pageShift: bigint): ZeroPageHint | undefined {
  if (excess <= 0) return undefined;
  const readOnly: { iova: bigint; pages: number }[] = [];
  for (const b of core.backends()) {
    for (const d of b.snapshot().dmas) {
      if (d.pid === pid && d.prot === IOMMU_READ) readOnly.push({ iova: d.iova, pages: Number(d.size >> pageShift) });
    }
  }
  if (readOnly.length === 0) return undefined;
  const one = readOnly.find((m) => m.pages === excess);
  const all = readOnly.reduce((n, m) => n + m.pages, 0);
  const hit = one ? [one] : all === excess ? readOnly : undefined;
  if (!hit) return undefined;
  const mappings = hit.map((m) => '0x' + m.iova.toString(16));
  const what = hit.length === 1 ? `the READ-only mapping at iova ${mappings[0]}` : `the ${hit.length} READ-only mappings (iova ${mappings.join(', ')})`;
  return {
    text: `; ${excess} pages is the size of ${what}: the likely cause is the zero page (memory never written, which Linux before 6.2 pins without a charge and 6.2+ charges); this trace has no mmap events to show it`,
    mappings,
  };
}
