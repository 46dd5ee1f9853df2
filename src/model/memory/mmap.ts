/**
 * mmap and munmap events on a process's address space (mm/mmap.c,
 * Linux 6.1): what the new VMA is (locked, untouched) and what locked_vm
 * loses when VM_LOCKED memory is unmapped or mapped over. Only successful
 * mmaps are in a trace, so there is nothing to refuse here.
 */
import type { MmapEvent } from '../events.js';
import type { ModelEnv } from '../env.js';
import { lockable } from './address-space.js';
import type { Process } from './process.js';

/**
 * mmap_region: VM_LOCKED from MAP_LOCKED or mlockall(MCL_FUTURE)
 * (mm->def_flags) adds the mapping to locked_vm unless it is VM_SPECIAL
 * (pfnmap) or hugetlb. The pages are populated (write-faulted when the
 * mapping is writable: populate_vma_page_range) with MAP_POPULATE, or with
 * VM_LOCKED but not VM_LOCKONFAULT. Private anonymous memory that is not
 * write-populated is untouched: until written, a read finds the zero page.
 * Without `flags` (version 1, or a capture that does not say) memory is
 * taken as touched, the model's assumption before version 2. An mmap of a
 * VFIO device fd (`ofDeviceFd`) is device memory.
 */
export function mmap(env: ModelEnv, p: Process, e: MmapEvent, ofDeviceFd: boolean): number {
  if (ofDeviceFd && e.backing !== 'pfnmap') {
    // vfio_pci_core_mmap: a device's regions are VM_PFNMAP, whatever the trace calls them.
    env.report('TRACE_INCONSISTENT', `mmap of VFIO device fd ${e.fd} of pid ${e.pid} has backing ${e.backing}: a device's regions are device memory, taken as pfnmap`, {
      pid: e.pid,
      fd: e.fd,
    });
    e = { ...e, backing: 'pfnmap' };
  }
  const flags = e.flags;
  // A state saved before mlock existed restores without def_flags.
  const future = p.lockFuture ?? 'none';
  const lockedByFlag = flags?.includes('LOCKED') === true;
  const locked = lockedByFlag || future !== 'none';
  const populate = flags?.includes('POPULATE') === true || lockedByFlag || future === 'locked';
  const writable = e.prot?.write;
  const privateAnon = e.backing === 'anon' && flags !== undefined && flags.includes('PRIVATE');
  const untouched = privateAnon && !(populate && writable !== false);
  const opts: Parameters<typeof p.mm.map>[3] = { locked, untouched };
  if (e.pfn !== undefined) opts.pfn = e.pfn;
  if (writable !== undefined) opts.writable = writable;
  const backing = flags?.includes('HUGETLB') ? 'hugetlb' : e.backing;
  const unlocked = p.mm.map(e.vaddr, e.size, backing, opts);
  const lockedNow = locked && lockable(backing) ? Number(e.size >> env.pageShift) : 0;
  if (unlocked !== 0 || lockedNow !== 0) {
    p.lockMemory(lockedNow - unlocked);
    env.noteLockChange(p);
  }
  return 0;
}

/** munmap: VM_LOCKED pages in the range leave locked_vm (munlock_vma_pages_all). */
export function munmap(p: Process, e: { vaddr: MmapEvent['vaddr']; size: MmapEvent['size'] }): number {
  const unlocked = p.mm.unmap(e.vaddr, e.size);
  if (unlocked !== 0) p.lockMemory(-unlocked);
  return 0;
}
