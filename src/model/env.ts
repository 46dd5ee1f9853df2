/**
 * What every part of the model reaches for: page size, module parameters,
 * topology, the processes, and where findings go. One per replay and backend.
 */
import type { ModuleParams } from './events.js';
import type { FindingCode, FindingSink } from './findings.js';
import type { Topology } from './iommu/topology.js';
import type { FrameSpan } from './memory/frame-ledger.js';
import { type ChargeCause, Process } from './memory/process.js';
import { Errno } from './errno.js';
import type { KernelProfile, UntouchedReadPin } from './kernel/profile.js';
import { UNSPECIFIED_KERNEL } from './kernel/choose.js';
import type { AddressSpace, PinAccess } from './memory/address-space.js';

/** Whose locked_vm a charge goes to: a task, and the mm it had when it mapped (vfio_dma->task, ->mm). */
export interface ChargeOwner {
  readonly pid: number;
  readonly mm: AddressSpace | undefined;
}

/**
 * Whether RLIMIT_MEMLOCK refuses charges: `enforced` as the trace says, or
 * `unlimited` in the what-if replay behind the memlock answer.
 */
export type MemlockRule = 'enforced' | 'unlimited';

/** The four ways a pin reaches memory, made once (a pin per page must not allocate). */
const PIN_ACCESS: Record<UntouchedReadPin, readonly [PinAccess, PinAccess]> = {
  'zero-page': [Object.freeze({ write: false, untouchedRead: 'zero-page' }), Object.freeze({ write: true, untouchedRead: 'zero-page' })],
  unshare: [Object.freeze({ write: false, untouchedRead: 'unshare' }), Object.freeze({ write: true, untouchedRead: 'unshare' })],
};

export class ModelEnv {
  readonly pageShift: bigint;
  readonly pageSize: bigint;
  readonly processes = new Map<number, Process>();
  memlockRule: MemlockRule = 'enforced';
  /** The pid whose charge RLIMIT_MEMLOCK refused during the current event (the replayer clears it). */
  limitRefused: number | undefined;
  /** What differs between the kernels emulated (set by the replayer from the header or --kernel). */
  kernel: KernelProfile = UNSPECIFIED_KERNEL;

  constructor(
    pageSize: number,
    public params: ModuleParams,
    public topology: Topology,
    readonly findings: FindingSink,
  ) {
    this.pageSize = BigInt(pageSize);
    this.pageShift = BigInt(Math.log2(pageSize));
  }

  /** A process used before any `process start` is unlimited and without CAP_IPC_LOCK. */
  process(pid: number): Process {
    let p = this.processes.get(pid);
    if (!p) {
      p = new Process(pid, this.pageShift);
      this.processes.set(pid, p);
    }
    return p;
  }

  /**
   * RLIMIT_MEMLOCK in pages for a charge to `p` (rlimit(RLIMIT_MEMLOCK) >>
   * PAGE_SHIFT, as vfio_pin_pages_remote and vfio_pin_page_external read
   * it); none in the what-if replay.
   */
  limitPages(p: Process): number {
    return this.memlockRule === 'unlimited' ? Number.POSITIVE_INFINITY : p.limitPages(this.pageShift);
  }

  /**
   * An operation refused because its charge would take `pid` past
   * RLIMIT_MEMLOCK: ACCT_LIMIT, remembered for the event so the replayer
   * can answer what the trace needed, and the kernel's errno (-ENOMEM;
   * mlock with a limit of 0 is -EPERM, can_do_mlock).
   */
  refuseOverLimit(pid: number, message: string, details: Record<string, unknown>, errno: number = Errno.ENOMEM): number {
    this.limitRefused ??= pid;
    this.report('ACCT_LIMIT', message, details);
    return -errno;
  }

  /** How a long-term pin reaches the pages on this kernel: FOLL_WRITE when the mapping is writable (vaddr_get_pfns). */
  pinAccess(write: boolean): PinAccess {
    const rule = (this.kernel ?? UNSPECIFIED_KERNEL).untouchedReadPin;
    return PIN_ACCESS[rule][write ? 1 : 0];
  }

  /** A process's locked_vm changed outside a DMA charge (mlock): its peak is taken at the end of the event. */
  noteLockChange(p: Process): void {
    this.chargedThisEvent.add(p);
  }

  /** Processes charged during the current event: their ledgers say how many frames were charged again. */
  private readonly chargedThisEvent = new Set<Process>();
  /** Pages reported as ACCT_DOUBLE_CHARGE during the current event. */
  private doubleThisEvent = 0;

  report(code: FindingCode, message: string, details?: Record<string, unknown>): void {
    if (code === 'ACCT_DOUBLE_CHARGE') this.doubleThisEvent += Number(details?.pages ?? 0);
    this.findings.report(code, message, details);
  }

  /** Per pid, the shared-frame pages last reported (a high-water mark). */
  private readonly sharedReported = new Map<number, number>();

  /**
   * At the end of each event: ACCT_SHARED_FRAMES for a process whose frames
   * charged more than once reach a new high, beyond what the design's own
   * double charge (ACCT_DOUBLE_CHARGE) explains. Churn over the same shared
   * frames is not reported again.
   */
  endEvent(): void {
    if (this.chargedThisEvent.size === 0 && this.doubleThisEvent === 0) return;
    let double = this.doubleThisEvent;
    for (const p of this.chargedThisEvent) {
      p.notePeak();
      const pid = p.pid;
      const pages = p.frames.takeSharedAdded();
      if (pages === 0) continue;
      const explained = Math.min(double, pages);
      double -= explained;
      const shared = pages - explained;
      const total = p.frames.duplicatePages;
      const high = this.sharedReported.get(pid) ?? 0;
      if (shared > 0 && total > high) {
        this.sharedReported.set(pid, total);
        this.report(
          'ACCT_SHARED_FRAMES',
          `${shared} pages charged to pid ${pid} are frames it already has charged through another mapping or container; ${total} such pages now add to the memlock need`,
          { pid, pages: shared, total },
        );
      }
    }
    this.chargedThisEvent.clear();
    this.doubleThisEvent = 0;
  }

  /**
   * The process whose locked_vm a charge to `owner` reaches: the task's, if
   * `owner.mm` is still its mm (vfio_lock_acct charges dma->mm, commit
   * 046eca5018f8, in 6.1.y stable too); none once that mm has gone: the
   * task exec'd (a new mm) or exited (mmget_not_zero fails). An owner
   * without an mm (saved before mms were kept) is the task's current mm.
   */
  mmOwner(owner: ChargeOwner): Process | undefined {
    const p = this.processes.get(owner.pid);
    if (!p || (owner.mm !== undefined && owner.mm !== p.mm)) return undefined;
    return p;
  }

  /**
   * Charges (sign 1) or uncharges (sign -1) the mm of `owner` for the frames
   * of `spans` (vfio_lock_acct; the limit was checked by the caller, as the
   * kernel checks it before accounting). `causes` splits the pages between
   * IOMMU mappings and external pins. Frames charged a second time are
   * reported as ACCT_SHARED_FRAMES; an uncharge below zero is clamped, as
   * the kernel does, and reported as ACCT_UNDERFLOW. An mm that has gone
   * takes nothing (mmOwner). Returns whether a live mm was charged, so the
   * caller's ledger of what it charged to the pid follows.
   */
  applyCharge(owner: ChargeOwner, spans: readonly FrameSpan[], sign: 1 | -1, causes: Partial<Record<ChargeCause, number>>): boolean {
    let pages = 0;
    for (const s of spans) pages += s.pages;
    if (pages === 0) return true;
    const p = this.mmOwner(owner);
    if (!p) return false;
    const pid = owner.pid;
    if (sign > 0) {
      for (const s of spans) p.frames.add(s);
      p.charge(pages, true, this.pageShift);
      p.byCause.direct += causes.direct ?? 0;
      p.byCause.pins += causes.pins ?? 0;
      this.chargedThisEvent.add(p);
      return true;
    }
    for (const s of spans) p.frames.remove(s);
    p.byCause.direct -= causes.direct ?? 0;
    p.byCause.pins -= causes.pins ?? 0;
    const before = p.lockedVm;
    const r = p.charge(-pages, true, this.pageShift);
    if (r.underflow > 0) {
      this.report('ACCT_UNDERFLOW', `Cannot uncharge ${pages} pages from pid ${pid}: only ${before} are charged`, {
        pid,
        uncharge: pages,
        locked_vm: before,
      });
    }
    return true;
  }
}
