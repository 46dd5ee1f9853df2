/**
 * Linux 6.2 and later, as Debian 13's 6.12 runs it: GUP unshares the zero
 * page before a READ-only long-term pin in a COW mapping (commit
 * 84209e87c696, "mm/gup: reliable R/O long-term pinning in COW mappings",
 * first in 6.2), so the pin gets a new anonymous page and vfio charges it.
 */
import type { KernelProfile } from './profile.js';

export const LINUX_6_12: KernelProfile = {
  id: 'linux-6.12',
  releases: 'Linux 6.2 and later',
  untouchedReadPin: 'unshare',
};
