/**
 * fork, exec and exit of a traced process (kernel/fork.c copy_process,
 * fs/exec.c begin_new_exec, kernel/exit.c do_exit), as far as VFIO and
 * locked memory see them.
 */
import type { ModelEnv } from '../env.js';
import type { MemlockLimit, ProcessEvent } from '../events.js';
import type { ChargeBreakdown, Process } from '../memory/process.js';
import { AddressSpace } from '../memory/address-space.js';
import { dropLocks } from '../memory/mlock.js';
import type { VfioCore } from '../vfio/core.js';

/**
 * fork: the child gets a copy of the parent's fd table (the same open
 * containers, groups and device files), its RLIMIT_MEMLOCK and
 * CAP_IPC_LOCK, and a copy of its described address space (dup_mmap:
 * private memory on its own frames, shared and device memory on the same
 * ones); nothing locked (VM_LOCKED and mm->def_flags are not inherited),
 * locked_vm 0. A DMA map the child makes through an inherited container fd
 * acts on that container and is charged to the child, whose mm
 * vfio_dma_do_map takes (current).
 */
export function forkProcess(env: ModelEnv, core: VfioCore, e: ProcessEvent, parentPid: number): number {
  const parent = env.process(parentPid);
  const known = env.processes.get(e.pid);
  if (known && known.alive && known.lockedVm > 0) {
    env.report('TRACE_INCONSISTENT', `Fork of pid ${e.pid}, which the trace has not seen exit and which has ${known.lockedVm} pages locked`, {
      pid: e.pid,
      locked_vm: known.lockedVm,
    });
  }
  const child = env.process(e.pid);
  child.alive = true;
  child.memlockLimit = parent.memlockLimit;
  child.capIpcLock = parent.capIpcLock;
  const comm = e.comm ?? parent.comm;
  if (comm !== undefined) child.comm = comm;
  child.mm = parent.mm.forkFor(e.pid);
  child.lockFuture = 'none';
  core.fork(parentPid, e.pid);
  return 0;
}

/**
 * exec (begin_new_exec -> exec_mmap): a new mm; the old one goes with its
 * described mappings, its mlocks and every DMA charge it held, so the new
 * mm starts at locked_vm 0. File descriptors stay: the capture writes the
 * close-on-exec closes before the exec event.
 *
 * DMA mappings made before the exec keep their pins but stay tied to the
 * old mm (vfio_dma->mm, commit 046eca5018f8 "vfio/type1: Prevent underflow
 * of locked_vm via exec()", v6.2 and 6.1.y stable, so on every kernel
 * profile): their unmap and their external pins' charges reach nothing,
 * and a vendor driver can no longer pin through them (-ENODEV). Maps made
 * after it are charged to the new mm, whose locked_vm RLIMIT_MEMLOCK checks.
 */
export function execProcess(env: ModelEnv, core: VfioCore, e: ProcessEvent): number {
  const p = env.process(e.pid);
  p.replaceMm(new AddressSpace(e.pid, env.pageShift, (p.mm.generation ?? 0) + 1));
  for (const b of core.backends()) b.mmGone(e.pid);
  if (e.comm !== undefined) p.comm = e.comm;
  return 0;
}

/** What stays known of a process after its exit. */
export interface ExitedProcess {
  peak: number;
  breakdown: ChargeBreakdown;
  limit: MemlockLimit;
  capIpcLock: boolean;
  vfioContainers: number;
}

/**
 * exit: every fd it still holds is closed (close_files), its mm goes with
 * its locked memory (exit_mmap), and what stays charged to it is a leak,
 * except mappings in containers other processes still hold (a forked
 * child's maps), which stay charged to it until they go. Its peak is kept.
 */
export function exitProcess(env: ModelEnv, core: VfioCore, p: Process, exited: Map<number, ExitedProcess>): void {
  core.exitProcess(p.pid);
  dropLocks(p);
  for (const c of core.containers) core.touched.push({ container: c });
  let held = 0;
  for (const b of core.backends()) held += b.chargedTo(p.pid);
  // exit_mmap: the mm goes; what other holders' containers charged to it goes with it.
  for (const b of core.backends()) b.mmGone(p.pid);
  if (p.lockedVm > p.orphaned + held) {
    env.report('ACCT_LEAK', `Process ${p.pid} exited with ${p.lockedVm} pages still charged after all its VFIO files were closed`, {
      pid: p.pid,
      pages: p.lockedVm,
    });
  }
  const prev = exited.get(p.pid);
  exited.set(p.pid, {
    ...(!prev || p.peakLockedVm >= prev.peak ? { peak: p.peakLockedVm, breakdown: p.peakBreakdown } : { peak: prev.peak, breakdown: prev.breakdown }),
    limit: p.memlockLimit,
    capIpcLock: p.capIpcLock,
    vfioContainers: Math.max(p.vfioContainers || 0, prev?.vfioContainers || 0),
  });
  env.processes.delete(p.pid);
}
