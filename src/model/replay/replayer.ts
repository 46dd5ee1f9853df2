/**
 * Replays a trace's events through one backend design: the VFIO core over
 * emulated processes and IOMMUs, the kernel's result for every event, the
 * observed results checked against it, and the invariants after each event.
 * Pure: no I/O, no logging. Segments of one trace continue one another.
 */
import { errnoName } from '../errno.js';
import type { MemlockLimit, TraceEvent, TraceHeader } from '../events.js';
import { ModelEnv } from '../env.js';
import { FINDING_CODES, type Finding, type FindingCode, type FindingSink } from '../findings.js';
import { Topology } from '../iommu/topology.js';
import type { IommuDriver } from '../vfio/driver.js';
import { VfioCore } from '../vfio/core.js';
import { defaultIommuUnit } from '../iommu/default-unit.js';
import type { ChargeBreakdown } from '../memory/process.js';
import { outDifferences } from './compare.js';
import { cloneState } from '../state/snapshot.js';
import { type OwedFinding, attachedFindings, kernelOfHeader } from './header-findings.js';
import { mmap, munmap } from '../memory/mmap.js';
import { mlock, mlockall, munlock, munlockall } from '../memory/mlock.js';
import { type ExitedProcess, execProcess, exitProcess, forkProcess } from './lifecycle.js';
import { zeroPageHint } from './zero-page-hint.js';

export interface Outcome {
  seq: number;
  ret: number;
  out?: Record<string, unknown>;
}

export interface ReplayOptions {
  /** Keep every event's outcome (for --outcomes and tests). */
  keepOutcomes?: boolean;
  /**
   * Compare the trace's observed results with this design's (default true).
   * A capture comes from one real backend; the designs that did not produce
   * it are compared with each other instead (DESIGN_DIVERGENCE).
   */
  checkObserved?: boolean;
  /** Check the invariants after every event (default true; the what-if replay does not). */
  checkInvariants?: boolean;
  /**
   * The kernel release to emulate (`--kernel`), overriding the header's
   * `kernel`: it picks the kernel profile (the zero-page rule).
   */
  kernel?: string;
}

/** The operations RLIMIT_MEMLOCK refused for one process, and the limit that refused the first. */
export interface LimitRefusals {
  count: number;
  firstSeq: number;
  /** The ioctl's uapi name, or the event type (`pin`). */
  firstEvent: string;
  limit: MemlockLimit;
  capIpcLock: boolean;
}

/**
 * What one process needed and had, under one design. `requiredPages` is
 * the memlock answer: the peak locked_vm of the same trace replayed with
 * RLIMIT_MEMLOCK unlimited (every operation the limit refused succeeds and
 * everything after runs on that state), so the smallest limit under which
 * the whole trace would have run. `peakLockedVm` is the peak under the
 * limit in force. The limit is the one in force at the first refusal, or
 * else at the end of the process (or its exit).
 */
export interface ProcessAccounting {
  pid: number;
  peakLockedVm: number;
  finalLockedVm: number;
  requiredPages: number;
  /** What `requiredPages` is made of, at that peak. */
  breakdown: ChargeBreakdown;
  limit: MemlockLimit;
  capIpcLock: boolean;
  refusals: LimitRefusals | undefined;
  vfioContainers: number;
}

export class CollectingSink implements FindingSink {
  readonly findings: Finding[] = [];
  seq = 0;
  report(code: FindingCode, message: string, details: Record<string, unknown> = {}): void {
    this.findings.push({ code, severity: FINDING_CODES[code], seq: this.seq, message, details });
  }
}

export class Replayer {
  private readonly sink = new CollectingSink();
  /**
   * The same trace with RLIMIT_MEMLOCK unlimited, forked at the first
   * operation the limit refused: the memlock answer. None while the limit
   * has refused nothing, so a trace that fits costs nothing more.
   */
  private whatIf: Replayer | undefined;
  /** Per pid, the operations RLIMIT_MEMLOCK refused. */
  private readonly refusals = new Map<number, LimitRefusals>();
  private env: ModelEnv | undefined;
  private core: VfioCore | undefined;
  private header: TraceHeader | undefined;
  private readonly unknownCmds = new Set<string>();
  /** Findings owed at the next event (attached processes, the kernel named): reported with its seq. */
  private pending: OwedFinding[] | undefined;
  /** The trace has described memory (mmap events): the zero-page hint does not apply. */
  private sawMmap = false;
  /** Attached pids already warned about. */
  private attachedWarned: Set<number> | undefined;
  readonly outcomes: Outcome[] = [];
  events = 0;
  lastSeq = -1;

  constructor(
    readonly driver: IommuDriver,
    private options: ReplayOptions = {},
  ) {}

  /** Reports a finding against the current event from outside the model (differential replay). */
  note(code: FindingCode, message: string, details: Record<string, unknown> = {}): void {
    this.sink.report(code, message, details);
  }

  /**
   * The memlock answer: for each process, the smallest RLIMIT_MEMLOCK under
   * which every operation that succeeded would still have succeeded (its
   * peak charge), and what that peak was made of.
   */
  memlockRequired(): Map<number, { bytes: bigint; breakdown: ChargeBreakdown }> {
    const pageSize = this.env?.pageSize ?? 4096n;
    const out = new Map<number, { bytes: bigint; breakdown: ChargeBreakdown }>();
    for (const [pid, v] of (this.whatIf ?? this).peaks()) out.set(pid, { bytes: BigInt(v.pages) * pageSize, breakdown: v.breakdown });
    return out;
  }

  /** Each process's peak locked_vm in this replay and what it was made of, exited ones included. */
  private peaks(): Map<number, { pages: number; breakdown: ChargeBreakdown }> {
    const out = new Map<number, { pages: number; breakdown: ChargeBreakdown }>();
    for (const [pid, v] of this.exited) out.set(pid, { pages: v.peak, breakdown: v.breakdown });
    for (const p of this.env?.processes.values() ?? []) {
      const prev = out.get(p.pid);
      if (!prev || p.peakLockedVm >= prev.pages) out.set(p.pid, { pages: p.peakLockedVm, breakdown: p.peakBreakdown });
    }
    return out;
  }

  /** Per process: the peak under the limit in force, the memlock answer, the limit and what it refused. */
  accounting(): Map<number, ProcessAccounting> {
    const { current, peak } = this.lockedVm();
    const required = (this.whatIf ?? this).peaks();
    const out = new Map<number, ProcessAccounting>();
    for (const [pid, pages] of peak) {
      const live = this.env?.processes.get(pid);
      const gone = this.exited.get(pid);
      const refusals = this.refusals.get(pid);
      const need = required.get(pid);
      out.set(pid, {
        pid,
        peakLockedVm: pages,
        finalLockedVm: current.get(pid) ?? 0,
        requiredPages: Math.max(need?.pages ?? 0, pages),
        breakdown: need?.breakdown ?? { direct: 0, pins: 0, shared: 0 },
        limit: refusals?.limit ?? live?.memlockLimit ?? gone?.limit ?? 'unlimited',
        capIpcLock: refusals?.capIpcLock ?? live?.capIpcLock ?? gone?.capIpcLock ?? false,
        refusals,
        // A state saved before this field existed restores without it.
        vfioContainers: Math.max(live?.vfioContainers || 0, gone?.vfioContainers || 0),
      });
    }
    return out;
  }

  /** The trace's page size in bytes (4096 before the first segment). */
  get pageSize(): number {
    return this.header?.pageSize ?? 4096;
  }

  get traceId(): string | undefined {
    return this.header?.traceId;
  }

  get findings(): readonly Finding[] {
    return this.sink.findings;
  }

  /** Hands over the findings reported so far and forgets them (the store keeps them). */
  takeFindings(): Finding[] {
    return this.sink.findings.splice(0, this.sink.findings.length);
  }

  /**
   * Starts a segment. Segment 0 sets up the model; segment N continues
   * from N-1 and may omit the topology. Returns an error message when the
   * segment does not continue this trace.
   */
  beginSegment(h: TraceHeader): string | undefined {
    if (!this.header) {
      if (h.segment !== 0) return `trace ${h.traceId} starts at segment ${h.segment}; segment 0 must come first`;
      const topo = h.topology ?? { iommus: [], groups: [] };
      this.env = new ModelEnv(h.pageSize, h.moduleParams, new Topology(topo.iommus, topo.groups, defaultIommuUnit()), this.sink);
      this.core = new VfioCore(this.env, this.driver);
      this.header = h;
      this.noteHeader(this.env, h, true);
      return undefined;
    }
    if (h.traceId !== this.header.traceId) return `segment of trace ${h.traceId} given to trace ${this.header.traceId}`;
    if (h.segment !== this.header.segment + 1) {
      return `segment ${h.segment} of trace ${h.traceId} does not follow segment ${this.header.segment}`;
    }
    if (h.pageSize !== this.header.pageSize) return `segment ${h.segment} changes page_size`;
    if (h.topology) {
      const topo = h.topology;
      this.env!.topology = new Topology(topo.iommus, topo.groups, defaultIommuUnit());
    }
    this.env!.params = h.moduleParams;
    this.header = { ...h, topology: h.topology ?? this.header.topology };
    this.noteHeader(this.env!, h, false);
    return undefined;
  }

  /** The kernel profile and the header's findings, owed to the segment's first event. */
  private noteHeader(env: ModelEnv, h: TraceHeader, first: boolean): void {
    const owed: OwedFinding[] = [];
    if (first) {
      const k = kernelOfHeader(this.options.kernel, h);
      if (k.profile) env.kernel = k.profile;
      if (k.finding) owed.push(k.finding);
    }
    if (h.attached) owed.push(...attachedFindings(h, (this.attachedWarned ??= new Set())));
    if (owed.length > 0) (this.pending ??= []).push(...owed);
  }

  apply(e: TraceEvent): Outcome {
    const env = this.env;
    const core = this.core;
    if (!env || !core) throw new Error('apply before beginSegment');
    this.sink.seq = e.seq;
    this.events++;
    this.lastSeq = e.seq;
    core.touched = [];
    env.limitRefused = undefined;
    if (this.pending) {
      for (const f of this.pending) this.sink.report(f.code, f.message, f.details);
      this.pending = undefined;
    }
    const outcome = this.dispatch(env, core, e);
    env.endEvent();
    if (this.options.checkObserved ?? true) this.checkObserved(env, core, e, outcome);
    if (this.options.checkInvariants ?? true) this.checkInvariants(env, core);
    if (this.options.keepOutcomes) this.outcomes.push(outcome);
    if (env.limitRefused !== undefined) this.noteRefusal(env, e, env.limitRefused);
    if (this.whatIf) {
      this.whatIf.apply(e);
      this.whatIf.sink.findings.length = 0;
    }
    return outcome;
  }

  /**
   * An operation RLIMIT_MEMLOCK refused: counted for its process, and at
   * the first one the what-if replay starts from a copy of this state. Until
   * then the two replays are the same (the limit only ever refuses), and a
   * refused operation changes nothing (the kernel unwinds a failed pin), so
   * the state after it is the state before it, into which the what-if
   * replays the event again with no limit.
   */
  private noteRefusal(env: ModelEnv, e: TraceEvent, pid: number): void {
    const prev = this.refusals.get(pid);
    if (prev) prev.count++;
    else {
      const p = env.process(pid);
      const firstEvent = e.type === 'ioctl' ? (e.call.cmd === 'unknown' ? e.call.name : e.call.cmd) : e.type;
      this.refusals.set(pid, { count: 1, firstSeq: e.seq, firstEvent, limit: p.memlockLimit, capIpcLock: p.capIpcLock });
    }
    if (this.whatIf) return;
    const fork = cloneState<Replayer>(this);
    fork.env!.memlockRule = 'unlimited';
    fork.options = { checkObserved: false, checkInvariants: false };
    fork.outcomes.length = 0;
    fork.sink.findings.length = 0;
    this.whatIf = fork;
  }

  private dispatch(env: ModelEnv, core: VfioCore, e: TraceEvent): Outcome {
    const seq = e.seq;
    switch (e.type) {
      case 'process': {
        const p = env.process(e.pid);
        if (e.op === 'start') {
          p.alive = true;
          p.memlockLimit = e.memlockLimit ?? 'unlimited';
          p.capIpcLock = e.capIpcLock ?? false;
          if (e.comm !== undefined) p.comm = e.comm;
        } else if (e.op === 'setrlimit') {
          if (e.memlockLimit !== undefined) p.memlockLimit = e.memlockLimit;
          if (e.capIpcLock !== undefined) p.capIpcLock = e.capIpcLock;
        } else if (e.op === 'fork') {
          return { seq, ret: forkProcess(env, core, e, e.parent!) };
        } else if (e.op === 'exec') {
          return { seq, ret: execProcess(env, core, e) };
        } else {
          exitProcess(env, core, p, this.exited);
        }
        return { seq, ret: 0 };
      }
      case 'mmap':
        this.sawMmap = true;
        return { seq, ret: mmap(env, env.process(e.pid), e, e.fd !== undefined && core.fileKind(e.pid, e.fd) === 'device') };
      case 'munmap':
        return { seq, ret: munmap(env.process(e.pid), e) };
      case 'mlock':
        return { seq, ret: mlock(env, env.process(e.pid), e.vaddr, e.size, e.onFault) };
      case 'munlock':
        return { seq, ret: munlock(env, env.process(e.pid), e.vaddr, e.size) };
      case 'mlockall':
        return { seq, ret: mlockall(env, env.process(e.pid), e) };
      case 'munlockall':
        return { seq, ret: munlockall(env.process(e.pid)) };
      case 'dup':
        return { seq, ret: core.dup(e.pid, e.fd, e.newfd, e.call) };
      case 'open':
        return { seq, ret: core.open(e.pid, e.fd, e.path) };
      case 'close':
        return { seq, ret: core.close(e.pid, e.fd) };
      case 'ioctl': {
        if (e.call.cmd === 'unknown') {
          if (!this.unknownCmds.has(e.call.name)) {
            this.unknownCmds.add(e.call.name);
            env.report('TRACE_UNKNOWN_CMD', `Ioctl ${e.call.name} is not modelled; its events are kept and otherwise ignored`, {
              cmd: e.call.name,
            });
          }
          return { seq, ret: e.observed.ret ?? 0 };
        }
        const r = core.ioctl(e.pid, e.fd, seq, e.call, e.observed.ret);
        return r.out && r.ret >= 0 ? { seq, ret: r.ret, out: r.out } : { seq, ret: r.ret };
      }
      case 'device':
        return { seq, ret: core.device(e.dev, e.op) };
      case 'pin':
        return { seq, ret: core.pin(e.dev, e.pages, e.prot) };
      case 'unpin':
        return { seq, ret: core.unpin(e.dev, e.pages) };
      case 'dma_unmap_notify':
        return { seq, ret: 0 };
    }
  }

  private eventPid(core: VfioCore, e: TraceEvent): number | undefined {
    if ('pid' in e) return e.pid;
    if ('dev' in e) return core.ownerOfDevice(e.dev);
    return undefined;
  }

  private checkObserved(env: ModelEnv, core: VfioCore, e: TraceEvent, o: Outcome): void {
    const obs = e.observed;
    if (obs.ret !== undefined && !(e.type === 'ioctl' && e.call.cmd === 'unknown')) {
      if (obs.ret !== o.ret) {
        env.report('RET_MISMATCH', `The trace observed ${errnoName(obs.ret)} where the model returns ${errnoName(o.ret)}`, {
          observed: obs.ret,
          model: o.ret,
          event: e.type === 'ioctl' ? e.call.cmd : e.type,
        });
      }
    }
    if (obs.out !== undefined && !(e.type === 'ioctl' && e.call.cmd === 'unknown')) {
      const diff = outDifferences(obs.out, o.out);
      if (diff.length > 0) {
        env.report('RET_MISMATCH', `The trace observed out.${diff.join(', out.')} different from the model's`, {
          fields: diff,
          observed: obs.out,
          model: o.out ?? null,
        });
      }
    }
    if (obs.lockedVm !== undefined) {
      const pid = this.eventPid(core, e);
      const model = pid === undefined ? undefined : env.processes.get(pid)?.lockedVm ?? 0;
      if (model !== undefined && model !== obs.lockedVm) {
        const hint = this.sawMmap ? undefined : zeroPageHint(core, pid!, model - obs.lockedVm, env.pageShift);
        env.report('ACCT_MISMATCH', `The trace observed locked_vm ${obs.lockedVm} pages for pid ${pid} where the model has ${model}${hint?.text ?? ''}`, {
          pid,
          observed: obs.lockedVm,
          model,
          ...(hint ? { likely_cause: 'zero-page', read_only_mappings: hint.mappings } : {}),
        });
      }
    }
  }

  /**
   * After every event: each touched container's own invariants over the
   * touched range, and for every process, locked_vm equals the pages its
   * containers charge plus the charge orphaned by removed mappings.
   */
  private checkInvariants(env: ModelEnv, core: VfioCore): void {
    const seen = new Set<object>();
    for (const t of core.touched) {
      const b = t.container.backend;
      if (!b) continue;
      if (!t.range && seen.has(b)) continue;
      if (!t.range) seen.add(b);
      b.checkInvariants(t.range);
    }
    if (core.touched.length === 0) return;
    const backends = core.backends();
    for (const p of env.processes.values()) {
      let charged = p.orphaned + (p.mlocked || 0);
      for (const b of backends) charged += b.chargedTo(p.pid);
      if (charged !== p.lockedVm) {
        env.report('ACCT_INCONSISTENT', `Process ${p.pid} has locked_vm ${p.lockedVm} pages but its containers account for ${charged}`, {
          pid: p.pid,
          locked_vm: p.lockedVm,
          accounted: charged,
        });
      }
    }
  }

  /** locked_vm and its peak per pid, for live and exited processes alike. */
  lockedVm(): { current: Map<number, number>; peak: Map<number, number> } {
    const current = new Map<number, number>();
    const peak = new Map<number, number>();
    for (const [pid, v] of this.exited) {
      current.set(pid, 0);
      peak.set(pid, v.peak);
    }
    for (const p of this.env?.processes.values() ?? []) {
      current.set(p.pid, p.lockedVm);
      peak.set(p.pid, Math.max(peak.get(p.pid) ?? 0, p.peakLockedVm));
    }
    return { current, peak };
  }

  private readonly exited = new Map<number, ExitedProcess>();

  get containersCreated(): number {
    return this.core?.containersCreated ?? 0;
  }

  get vfio(): VfioCore | undefined {
    return this.core;
  }

  get modelEnv(): ModelEnv | undefined {
    return this.env;
  }
}

