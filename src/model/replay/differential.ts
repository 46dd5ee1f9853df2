/**
 * Replays the same events through several backend designs side by side and
 * reports, for each pair of designs, the first event where they return
 * different results or leave a process with a different charge
 * (DESIGN_DIVERGENCE, on both designs' findings).
 */
import type { TraceEvent, TraceHeader } from '../events.js';
import type { IommuDriver } from '../vfio/driver.js';
import { type Outcome, type ReplayOptions, Replayer } from './replayer.js';

export class DifferentialReplay {
  readonly replayers = new Map<string, Replayer>();
  private readonly diverged = new Set<string>();

  /**
   * The trace's observed results are held against `observedBy` (the design
   * of the kernel that captured it) or, with one design, that one.
   */
  constructor(drivers: ReadonlyMap<string, IommuDriver>, observedBy: string, options: ReplayOptions = {}) {
    for (const [name, d] of drivers) {
      const checkObserved = drivers.size === 1 || name === observedBy;
      this.replayers.set(name, new Replayer(d, { ...options, checkObserved }));
    }
  }

  get lastSeq(): number {
    return [...this.replayers.values()][0]?.lastSeq ?? -1;
  }

  beginSegment(h: TraceHeader): string | undefined {
    for (const r of this.replayers.values()) {
      const err = r.beginSegment(h);
      if (err) return err;
    }
    return undefined;
  }

  apply(e: TraceEvent): void {
    const results: [string, Replayer, Outcome][] = [];
    for (const [name, r] of this.replayers) results.push([name, r, r.apply(e)]);
    if (results.length < 2) return;
    for (let i = 0; i < results.length; i++) {
      for (let j = i + 1; j < results.length; j++) this.compare(e, results[i]!, results[j]!);
    }
  }

  private compare(e: TraceEvent, [a, ra, oa]: [string, Replayer, Outcome], [b, rb, ob]: [string, Replayer, Outcome]): void {
    const key = `${a}\u0000${b}`;
    if (this.diverged.has(key)) return;
    let what: Record<string, unknown> | undefined;
    if (oa.ret !== ob.ret) what = { kind: 'result', [a]: oa.ret, [b]: ob.ret };
    else {
      const la = ra.lockedVm().current;
      const lb = rb.lockedVm().current;
      for (const pid of new Set([...la.keys(), ...lb.keys()])) {
        const x = la.get(pid) ?? 0;
        const y = lb.get(pid) ?? 0;
        if (x !== y) {
          what = { kind: 'charge', pid, [a]: x, [b]: y };
          break;
        }
      }
    }
    if (!what) return;
    this.diverged.add(key);
    const event = e.type === 'ioctl' ? e.call.cmd : e.type;
    const message =
      what.kind === 'result'
        ? `Designs ${a} and ${b} first disagree here: ${event} returns ${oa.ret} under ${a} and ${ob.ret} under ${b}`
        : `Designs ${a} and ${b} first disagree here: after ${event}, pid ${String(what.pid)} has ${String(what[a])} pages locked under ${a} and ${String(what[b])} under ${b}`;
    const details = { ...what, designs: [a, b], event };
    ra.note('DESIGN_DIVERGENCE', message, details);
    rb.note('DESIGN_DIVERGENCE', message, details);
  }
}
