/**
 * Which kernel profile a replay uses: `--kernel VERSION` when given, else
 * the header's `kernel`. The boundary is Linux 6.2, the first release with
 * commit 84209e87c696 (GUP unshares the zero page for R/O long-term pins).
 * With no kernel named the model keeps its assumption from before profiles
 * existed: every pinned page is charged (what 6.2+ does), so traces without
 * a `kernel` replay exactly as they did.
 */
import { LINUX_6_1 } from './linux-6.1.js';
import { LINUX_6_12 } from './linux-6.12.js';
import { type KernelProfile, parseKernelRelease } from './profile.js';

/** No kernel named: the zero page is charged, as the model always assumed. */
export const UNSPECIFIED_KERNEL: KernelProfile = {
  id: 'unspecified',
  releases: 'no kernel named (the zero page is charged, as before kernel profiles)',
  untouchedReadPin: 'unshare',
};

export const KERNEL_PROFILES: readonly KernelProfile[] = [LINUX_6_1, LINUX_6_12, UNSPECIFIED_KERNEL];

export type KernelChoice = { ok: true; profile: KernelProfile } | { ok: false; reason: string };

/** The profile for a release string; an unreadable one is an error the caller reports. */
export function profileForRelease(release: string): KernelChoice {
  const r = parseKernelRelease(release);
  if (!r) return { ok: false, reason: `kernel ${JSON.stringify(release)} is not a release such as 6.1.0-57-amd64` };
  const before62 = r.major < 6 || (r.major === 6 && r.minor < 2);
  return { ok: true, profile: before62 ? LINUX_6_1 : LINUX_6_12 };
}
