/**
 * Linux before 6.2, as Debian 12's 6.1 runs it: a READ-only long-term pin
 * of never-written private anonymous memory pins the shared zero page,
 * which vfio treats as a reserved pfn (no charge). Measured: QEMU 7.2's
 * READ-only maps of pc.bios, pc.rom and isa-bios (128 pages) leave VmLck
 * unchanged on 6.1.0-57.
 */
import type { KernelProfile } from './profile.js';

export const LINUX_6_1: KernelProfile = {
  id: 'linux-6.1',
  releases: 'Linux before 6.2',
  untouchedReadPin: 'zero-page',
};
