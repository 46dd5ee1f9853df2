/**
 * The IOMMU a group gets when the header's topology does not list it
 * (TRACE-FORMAT.md): 4 KiB, 2 MiB and 1 GiB pages, cache coherent, 48-bit
 * aperture, the MSI window reserved. This matches what Debian's 6.1 and
 * 6.12 report under QEMU's intel-iommu (KERNEL-TYPE1.md).
 */
import type { IommuUnitSpec } from '../events.js';
import { iova } from '../units.js';

export const DEFAULT_IOMMU_ID = 'default';

export function defaultIommuUnit(): IommuUnitSpec {
  return {
    id: DEFAULT_IOMMU_ID,
    pgsizeBitmap: 0x40201000n,
    cacheCoherent: true,
    interruptRemapping: true,
    aperture: { start: iova(0n), end: iova((1n << 48n) - 1n) },
    reserved: [{ start: iova(0xfee00000n), end: iova(0xfeefffffn), type: 'msi' }],
  };
}
