/**
 * QEMU's error lines about a DMA map, which carry the only result a QEMU
 * trace has: 7.2's vfio_dma_map prints `VFIO_MAP_DMA failed: <strerror>`
 * right after the ioctl, and `vfio_dma_map(container, iova, size, vaddr) =
 * -errno (...)` (newer `vfio_container_dma_map`) either at once (a BAR,
 * error_report_err) or in the final error of a failed container setup.
 */
import { Errno } from '../model/errno.js';

/** The error line of a failed map (any prefix: program name, `-msg timestamp=on` time, `-device ...` location). */
export const DMA_ERROR = /\b(?:vfio_dma_map|vfio_container_dma_map)\(\s*(0x[0-9a-f]+|\(nil\)),\s*(0x[0-9a-f]+),\s*(0x[0-9a-f]+),\s*(0x[0-9a-f]+|\(nil\))\)\s*=\s*(-\d+)/i;

/** 7.2's vfio_dma_map: `error_report("VFIO_MAP_DMA failed: %s", strerror(errno))` right after the ioctl. */
export const MAP_FAILED = /\bVFIO_MAP_DMA failed: (.*?)\s*$/;

/** glibc's strerror texts of the errnos a MAP_DMA returns; any other text is reported, not guessed. */
export const STRERROR = new Map<string, number>([
  ['Cannot allocate memory', -Errno.ENOMEM],
  ['Invalid argument', -Errno.EINVAL],
  ['No space left on device', -Errno.ENOSPC],
  ['File exists', -Errno.EEXIST],
  ['Bad address', -Errno.EFAULT],
  ['Operation not permitted', -Errno.EPERM],
  ['Device or resource busy', -Errno.EBUSY],
]);
