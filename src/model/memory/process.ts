/**
 * A traced process: its mm (address space, locked_vm), RLIMIT_MEMLOCK and
 * CAP_IPC_LOCK. Charging follows __account_locked_vm (mm/util.c).
 */
import type { MemlockLimit } from '../events.js';
import type { Pages } from '../units.js';
import { AddressSpace } from './address-space.js';
import { FrameLedger } from './frame-ledger.js';

/** Why pages are charged: IOMMU mappings, or external (vendor driver) pins. */
export type ChargeCause = 'direct' | 'pins';

/**
 * The charge at the peak, by cause; `shared` pages are frames charged more
 * than once (within direct + pins). `mlock`: pages locked by mlock, mlockall
 * or MAP_LOCKED (they count in locked_vm with the DMA charge), present only
 * for a process that locked memory that way.
 */
export interface ChargeBreakdown {
  direct: number;
  pins: number;
  shared: number;
  mlock?: number;
}

export class Process {
  /** mm->locked_vm of the current mm, in pages. */
  lockedVm = 0;
  /**
   * The highest locked_vm seen between events: what a trace's `locked_vm`
   * can observe. A charge an operation takes and gives back before it
   * returns (a pin unwound after a later page fails) does not count: the
   * operation fails either way.
   */
  peakLockedVm = 0;
  /** Pages left charged by mappings that are gone (reported as ACCT_LEAK). */
  orphaned = 0;
  /**
   * Pages of locked_vm that are VM_LOCKED memory (mlock, mlockall,
   * MAP_LOCKED), not DMA charges: the described regions' locked pages plus
   * `mlockUndescribed`.
   */
  mlocked = 0;
  /** Pages mlockall(MCL_CURRENT) locked that no mmap describes (the program, its stack and libraries). */
  mlockUndescribed = 0;
  /** The process has locked memory through mlock at some point: its breakdown shows the `mlock` cause. */
  mlockUsed = false;
  /** mlockall(MCL_FUTURE): mm->def_flags has VM_LOCKED (and VM_LOCKONFAULT with MCL_ONFAULT). */
  lockFuture: 'none' | 'locked' | 'onfault' = 'none';
  /** Pages charged now, by cause. */
  readonly byCause: Record<ChargeCause, number> = { direct: 0, pins: 0 };
  /** The charge by cause when locked_vm last reached its peak. */
  peakBreakdown: ChargeBreakdown = { direct: 0, pins: 0, shared: 0 };
  /** Every frame charged to the current mm, with its count. */
  frames = new FrameLedger();
  memlockLimit: MemlockLimit = 'unlimited';
  capIpcLock = false;
  comm: string | undefined;
  /**
   * Containers this process attached groups to: QEMU gives each device
   * behind a vIOMMU its own container, so this is libvirt's per-device
   * factor for the default memlock limit.
   */
  vfioContainers = 0;
  alive = true;
  /** The current mm; exec replaces it, fork gives the child a copy. */
  mm: AddressSpace;

  constructor(
    readonly pid: number,
    pageShift: bigint,
  ) {
    this.mm = new AddressSpace(pid, pageShift);
  }

  /** RLIMIT_MEMLOCK in pages (rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT). */
  limitPages(pageShift: bigint): number {
    if (this.memlockLimit === 'unlimited') return Number.POSITIVE_INFINITY;
    return Number(this.memlockLimit >> pageShift);
  }

  /**
   * exec (exec_mmap): `mm` replaces the current mm, which goes with all it
   * had locked or had charged (mlocks, DMA charges, leaked charges). The
   * new mm starts at locked_vm 0; the peak stays, the highest any mm of
   * the pid reached (what its RLIMIT_MEMLOCK must allow).
   */
  replaceMm(mm: AddressSpace): void {
    this.mm = mm;
    this.lockedVm = 0;
    this.orphaned = 0;
    this.mlocked = 0;
    this.mlockUndescribed = 0;
    this.lockFuture = 'none';
    this.byCause.direct = 0;
    this.byCause.pins = 0;
    this.frames = new FrameLedger();
  }

  /** Records a new peak with its breakdown; called at the end of each event that charged. */
  notePeak(): void {
    if (this.lockedVm > this.peakLockedVm) {
      this.peakLockedVm = this.lockedVm;
      this.peakBreakdown = { direct: this.byCause.direct, pins: this.byCause.pins, shared: this.frames.duplicatePages };
      if (this.mlockUsed) this.peakBreakdown.mlock = this.mlocked;
    }
  }

  /**
   * mm->locked_vm += pages for VM_LOCKED memory (mlock_fixup, mmap_region
   * with VM_LOCKED); a negative count unlocks. The limit was checked by the
   * caller, as do_mlock checks it before mlock_fixup.
   */
  lockMemory(pages: number): void {
    if (pages === 0) return;
    this.mlockUsed = true;
    this.mlocked = (this.mlocked || 0) + pages;
    this.lockedVm += pages;
  }

  /**
   * __account_locked_vm: an increase past the limit without the bypass
   * (CAP_IPC_LOCK captured at MAP time) fails with ENOMEM and changes
   * nothing; a decrease below zero is clamped (the kernel WARNs) and the
   * missing pages are returned so the caller can report them.
   */
  charge(delta: Pages | number, bypassLimit: boolean, pageShift: bigint): { ok: boolean; underflow: number } {
    if (delta > 0) {
      if (!bypassLimit && this.lockedVm + delta > this.limitPages(pageShift)) return { ok: false, underflow: 0 };
      this.lockedVm += delta;
      return { ok: true, underflow: 0 };
    }
    const dec = -delta;
    if (dec > this.lockedVm) {
      const underflow = dec - this.lockedVm;
      this.lockedVm = 0;
      return { ok: true, underflow };
    }
    this.lockedVm -= dec;
    return { ok: true, underflow: 0 };
  }
}
