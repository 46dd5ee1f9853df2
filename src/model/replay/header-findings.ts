/**
 * What a segment's header tells the replay before any event: the kernel
 * profile to emulate (from --kernel or the header's `kernel`), and the
 * processes the capture attached to. Findings about them are owed to the
 * segment's first event, so they carry its seq.
 */
import type { TraceHeader } from '../events.js';
import type { FindingCode } from '../findings.js';
import { profileForRelease } from '../kernel/choose.js';
import type { KernelProfile } from '../kernel/profile.js';

export interface OwedFinding {
  code: FindingCode;
  message: string;
  details: Record<string, unknown>;
}

/**
 * The profile for `--kernel` or else the header's `kernel`; none named keeps
 * the default. A release the model cannot read keeps the default too, with a
 * warning (--kernel is checked by the CLI before a replay starts).
 */
export function kernelOfHeader(override: string | undefined, h: TraceHeader): { profile?: KernelProfile; finding?: OwedFinding } {
  const release = override ?? h.kernel;
  if (release === undefined) return {};
  const c = profileForRelease(release);
  if (c.ok) return { profile: c.profile };
  return {
    finding: {
      code: 'TRACE_KERNEL',
      message: `The header's ${c.reason}: the model keeps its default kernel profile (every pinned page charged, the zero page too)`,
      details: { kernel: release },
    },
  };
}

/** One warning per attached process not warned about before (`warned` is updated). */
export function attachedFindings(h: TraceHeader, warned: Set<number>): OwedFinding[] {
  const out: OwedFinding[] = [];
  for (const a of h.attached ?? []) {
    if (warned.has(a.pid)) continue;
    warned.add(a.pid);
    const name = a.comm === undefined ? '' : ` (${a.comm})`;
    out.push({
      code: 'TRACE_ATTACHED',
      message: `The capture attached to pid ${a.pid}${name} while it ran: what it mapped, pinned, locked or opened before is not in the trace, so its locked_vm and results may differ from the kernel's`,
      details: { pid: a.pid, ...(a.comm === undefined ? {} : { comm: a.comm }) },
    });
  }
  return out;
}
