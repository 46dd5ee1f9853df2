/**
 * mlock, munlock, mlockall and munlockall (mm/mlock.c, Linux 6.1). Locked
 * pages are part of mm->locked_vm, so RLIMIT_MEMLOCK sees them together
 * with the DMA charge, in both directions: do_mlock's check counts what
 * vfio charged, and vfio_pin_pages_remote's check counts what mlock locked.
 * Nothing de-duplicates: pinning an mlocked page charges it again.
 */
import { Errno } from '../errno.js';
import type { ModelEnv } from '../env.js';
import type { MlockallEvent } from '../events.js';
import type { Process } from './process.js';
import { hex } from '../units.js';

/** [start, end) of a call's range, page aligned as the syscalls align it (PAGE_ALIGN(len + offset_in_page(start))). */
function pageRange(env: ModelEnv, vaddr: bigint, size: bigint): { start: bigint; end: bigint } {
  const mask = env.pageSize - 1n;
  const start = vaddr & ~mask;
  const end = (vaddr + size + mask) & ~mask;
  return { start, end };
}

/** can_do_mlock: a limit of 0 without CAP_IPC_LOCK refuses with -EPERM (not in the what-if). */
function cannotMlock(env: ModelEnv, p: Process, call: string): number | undefined {
  if (p.capIpcLock || env.memlockRule === 'unlimited' || p.memlockLimit === 'unlimited' || p.memlockLimit !== 0n) return undefined;
  return env.refuseOverLimit(p.pid, `Cannot ${call}: pid ${p.pid} has RLIMIT_MEMLOCK 0 and no CAP_IPC_LOCK (can_do_mlock)`, { pid: p.pid, limit_pages: 0 }, Errno.EPERM);
}

/**
 * do_mlock: -EPERM (can_do_mlock), -ENOMEM when locked_vm plus the range's
 * pages not yet locked exceeds RLIMIT_MEMLOCK without CAP_IPC_LOCK, or when
 * the range reaches unmapped memory (apply_vma_lock_flags). Then
 * mlock_fixup locks the range (pfnmap and hugetlb ranges are not counted)
 * and, without ONFAULT, populates it.
 */
export function mlock(env: ModelEnv, p: Process, vaddr: bigint, size: bigint, onFault: boolean): number {
  const denied = cannotMlock(env, p, 'mlock');
  if (denied !== undefined) return denied;
  const { start, end } = pageRange(env, vaddr, size);
  if (end <= start) return 0;
  const len = Number((end - start) >> env.pageShift);
  const limit = env.limitPages(p);
  const locked = p.lockedVm + len - p.mm.lockedPagesIn(start, end);
  if (locked > limit && !p.capIpcLock) {
    return env.refuseOverLimit(
      p.pid,
      `Cannot mlock ${len} pages at ${hex(start)}: pid ${p.pid} has ${p.lockedVm} of ${limit} pages locked (RLIMIT_MEMLOCK)`,
      { pid: p.pid, vaddr: hex(start), size: hex(end - start), locked_vm: p.lockedVm, needed: locked - p.lockedVm, limit_pages: limit },
    );
  }
  if (p.mm.hasHole(start, end)) return -Errno.ENOMEM;
  p.lockMemory(p.mm.setLocked(start, end, true, !onFault));
  env.noteLockChange(p);
  return 0;
}

/** munlock: -ENOMEM for a range reaching unmapped memory; the locked pages in range are uncharged. */
export function munlock(env: ModelEnv, p: Process, vaddr: bigint, size: bigint): number {
  const { start, end } = pageRange(env, vaddr, size);
  if (end <= start) return 0;
  if (p.mm.hasHole(start, end)) return -Errno.ENOMEM;
  p.lockMemory(-p.mm.setLocked(start, end, false, false));
  return 0;
}

/**
 * mlockall: flags must include CURRENT or FUTURE (ONFAULT alone -EINVAL);
 * can_do_mlock; with CURRENT, -ENOMEM when total_vm exceeds the limit
 * without CAP_IPC_LOCK. total_vm is known only as a lower bound (the
 * described mappings, plus what the capture measured beyond them), so a
 * refusal caused by memory the trace does not show is a RET_MISMATCH.
 * CURRENT locks every described lockable mapping and, when the capture
 * measured `pages`, the rest of them as memory no mmap describes; FUTURE
 * locks every later mapping (mm->def_flags).
 */
export function mlockall(env: ModelEnv, p: Process, e: MlockallEvent): number {
  if ((!e.current && !e.future)) return -Errno.EINVAL;
  const denied = cannotMlock(env, p, 'mlockall');
  if (denied !== undefined) return denied;
  if (e.current) {
    const limit = env.limitPages(p);
    const undescribed = e.pages !== undefined ? Math.max(0, e.pages - p.mm.unlockedLockablePages()) : 0;
    const totalVm = p.mm.describedPages() + (p.mlockUndescribed || 0) + undescribed;
    if (totalVm > limit && !p.capIpcLock) {
      return env.refuseOverLimit(
        p.pid,
        `Cannot mlockall CURRENT: pid ${p.pid} maps at least ${totalVm} pages, over its ${limit} pages of RLIMIT_MEMLOCK`,
        { pid: p.pid, total_vm: totalVm, limit_pages: limit },
      );
    }
    const described = p.mm.lockAll(!e.onFault);
    p.mlockUndescribed = (p.mlockUndescribed || 0) + undescribed;
    p.lockMemory(described + undescribed);
    env.noteLockChange(p);
  }
  p.lockFuture = e.future ? (e.onFault ? 'onfault' : 'locked') : 'none';
  return 0;
}

/** munlockall: every locked page is uncharged and mm->def_flags loses VM_LOCKED. */
export function munlockall(p: Process): number {
  const n = p.mm.unlockAll() + (p.mlockUndescribed || 0);
  p.mlockUndescribed = 0;
  p.lockMemory(-n);
  p.lockFuture = 'none';
  return 0;
}

/** The mm goes (exit, exec): its VM_LOCKED memory no longer counts in locked_vm. */
export function dropLocks(p: Process): void {
  const n = p.mlocked || 0;
  p.mlockUndescribed = 0;
  p.lockFuture = 'none';
  if (n > 0) p.lockMemory(-n);
}
