/**
 * `--kernel VERSION`: the kernel release the model emulates (its kernel
 * profile, e.g. the zero-page rule), overriding the trace header's
 * `kernel`. A release the model cannot read is bad usage (exit 2).
 */
import { profileForRelease } from '../model/kernel/choose.js';
import { UsageError } from './usage-error.js';

export function kernelArg(v: string | string[]): string {
  const s = String(Array.isArray(v) ? v[v.length - 1] : v);
  const c = profileForRelease(s);
  if (!c.ok) throw new UsageError(`--kernel: ${c.reason}`);
  return s;
}

export const kernelOption = {
  type: 'string',
  describe: "kernel release to emulate, overriding the header's kernel (6.1.0-57-amd64: before 6.2, the zero page is not charged; 6.12.48+deb12-amd64: it is)",
  coerce: kernelArg,
} as const;
