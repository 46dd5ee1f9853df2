import { describe, expect, it } from 'vitest';
import { Errno } from '../../src/model/errno.js';
import { MiB, codes, hx, lockedVm, retOf, setup, type Ev } from '../helpers.js';
import { mapFd, ram, run2 } from './v2.js';

const VA = 0x7f1000000000n;
const OTHER = 0x7f2000000000n;
const mlock = (vaddr: bigint, size: bigint, flags?: string[]): Ev => ({ type: 'mlock', pid: 100, vaddr: hx(vaddr), size: hx(size), ...(flags ? { flags } : {}) });
const munlock = (vaddr: bigint, size: bigint): Ev => ({ type: 'munlock', pid: 100, vaddr: hx(vaddr), size: hx(size) });
const mlockall = (flags: string[], pages?: number): Ev => ({ type: 'mlockall', pid: 100, flags, ...(pages === undefined ? {} : { pages }) });
const munlockall: Ev = { type: 'munlockall', pid: 100 };
const munmap = (vaddr: bigint, size: bigint): Ev => ({ type: 'munmap', pid: 100, vaddr: hx(vaddr), size: hx(size) });
/** A 1 MiB RLIMIT_MEMLOCK: 256 pages. */
const limited = () => setup({ limit: MiB });

describe('mlock counts in locked_vm with the DMA charge (do_mlock, mlock_fixup)', () => {
  it('locks 128 pages, and a 192-page map that alone would fit is refused with ENOMEM (128 + 192 > 256)', () => {
    const r = run2([...limited(), ram(VA, MiB), ram(OTHER, MiB), mlock(VA, 0x80000n), mapFd(20, 0n, 0xc0000n, OTHER)]);
    expect([retOf(r, 8), retOf(r, 9)]).toEqual([0, -Errno.ENOMEM]);
    expect(lockedVm(r)).toBe(128);
    expect(codes(r)).toEqual(['ACCT_LIMIT']);
  });

  it('after munlock the same map succeeds (192 pages)', () => {
    const r = run2([...limited(), ram(VA, MiB), ram(OTHER, MiB), mlock(VA, 0x80000n), munlock(VA, 0x80000n), mapFd(20, 0n, 0xc0000n, OTHER)]);
    expect(retOf(r, 10)).toBe(0);
    expect(lockedVm(r)).toBe(192);
  });

  it('refuses an mlock the DMA charge leaves no room for: 192 mapped + 64 locked = 256 fits, one page more is ENOMEM', () => {
    const r = run2([...limited(), ram(VA, MiB), ram(OTHER, MiB), mapFd(20, 0n, 0xc0000n, OTHER), mlock(VA, 0x40000n), mlock(VA + 0x40000n, 0x1000n)]);
    expect([retOf(r, 8), retOf(r, 9), retOf(r, 10)]).toEqual([0, 0, -Errno.ENOMEM]);
    expect(lockedVm(r)).toBe(256);
  });

  it('charges a DMA map of mlocked pages again: 64 locked + 64 pinned = 128', () => {
    const r = run2([...setup(), ram(VA, MiB), mlock(VA, 0x40000n), mapFd(20, 0n, 0x40000n, VA)]);
    expect(lockedVm(r)).toBe(128);
  });

  it('adds nothing for a range already locked; the limit check subtracts it (count_mm_mlocked_page_nr)', () => {
    const r = run2([...limited(), ram(VA, MiB), mlock(VA, MiB), mlock(VA, MiB), mlock(VA + 0x80000n, 0x1000n)]);
    expect([retOf(r, 7), retOf(r, 8), retOf(r, 9)]).toEqual([0, 0, 0]);
    expect(lockedVm(r)).toBe(256);
  });

  it('aligns the range to pages as the syscall does: 2 bytes across a page boundary lock 2 pages', () => {
    const r = run2([...setup(), ram(VA, MiB), mlock(VA + 0xfffn, 2n)]);
    expect(lockedVm(r)).toBe(2);
  });

  it('does not count pfnmap or hugetlb ranges (mlock_fixup skips them)', () => {
    const bar: Ev = { type: 'mmap', pid: 100, vaddr: hx(VA), size: '0x20000', backing: 'pfnmap', prot: ['READ', 'WRITE'], flags: ['SHARED'] };
    const huge: Ev = { type: 'mmap', pid: 100, vaddr: hx(OTHER), size: '0x200000', backing: 'hugetlb', prot: ['READ', 'WRITE'], flags: ['PRIVATE', 'ANONYMOUS', 'HUGETLB'] };
    const r = run2([...setup(), bar, huge, mlock(VA, 0x20000n), mlock(OTHER, 0x200000n)]);
    expect([retOf(r, 8), retOf(r, 9)]).toEqual([0, 0]);
    expect(lockedVm(r)).toBe(0);
  });

  it('refuses a range reaching unmapped memory with ENOMEM and locks nothing', () => {
    const r = run2([...setup(), ram(VA, MiB), munmap(VA + 0x10000n, 0x1000n), mlock(VA, 0x20000n), munlock(VA, 0x20000n)]);
    expect([retOf(r, 8), retOf(r, 9)]).toEqual([-Errno.ENOMEM, -Errno.ENOMEM]);
    expect(lockedVm(r)).toBe(0);
  });

  it('refuses with EPERM when RLIMIT_MEMLOCK is 0 without CAP_IPC_LOCK (can_do_mlock); CAP_IPC_LOCK lifts every limit', () => {
    const r = run2([...setup({ limit: 0n }), ram(VA, MiB), mlock(VA, 0x1000n)]);
    expect(retOf(r, 7)).toBe(-Errno.EPERM);
    const c = run2([...setup({ limit: 0n, cap: true }), ram(VA, MiB), mlock(VA, MiB)]);
    expect(retOf(c, 7)).toBe(0);
    expect(lockedVm(c)).toBe(256);
  });

  it('uncharges a munmap of a locked range (64 pages) and a MAP_FIXED over one', () => {
    const r = run2([...setup(), ram(VA, MiB), mlock(VA, MiB), munmap(VA, 0x40000n)]);
    expect(lockedVm(r)).toBe(192);
    const f = run2([...setup(), ram(VA, MiB), mlock(VA, MiB), ram(VA, 0x40000n, 100, ['FIXED'])]);
    expect(lockedVm(f)).toBe(192);
  });

  it('counts MAP_LOCKED mappings (16 pages) and the process exit drops them', () => {
    const r = run2([...setup(), ram(VA, 0x10000n, 100, ['LOCKED'])]);
    expect(lockedVm(r)).toBe(16);
    const e = run2([...setup(), ram(VA, 0x10000n, 100, ['LOCKED']), { type: 'process', op: 'exit', pid: 100 }]);
    expect(codes(e)).toEqual([]);
    expect(e.accounting().get(100)).toMatchObject({ peakLockedVm: 16, finalLockedVm: 0, breakdown: { direct: 0, pins: 0, shared: 0, mlock: 16 } });
  });
});

describe('mlockall and munlockall', () => {
  it('CURRENT locks the described mappings plus what the capture measured beyond them (pages: 300 = 256 described + 44)', () => {
    const r = run2([...setup(), ram(VA, MiB), mlockall(['CURRENT'], 300)]);
    expect(retOf(r, 7)).toBe(0);
    expect(lockedVm(r)).toBe(300);
  });

  it('CURRENT without pages locks the described mappings only (256)', () => {
    expect(lockedVm(run2([...setup(), ram(VA, MiB), mlockall(['CURRENT'])]))).toBe(256);
  });

  it('CURRENT is ENOMEM when the mapped memory (at least 257 pages) exceeds the limit', () => {
    const r = run2([...limited(), ram(VA, MiB), ram(OTHER, 0x1000n), mlockall(['CURRENT'])]);
    expect(retOf(r, 8)).toBe(-Errno.ENOMEM);
    expect(lockedVm(r)).toBe(0);
  });

  it('FUTURE locks later mappings (16 pages) but not earlier ones; ONFAULT alone is EINVAL', () => {
    const r = run2([...setup(), ram(VA, MiB), mlockall(['FUTURE']), ram(OTHER, 0x10000n), mlockall(['ONFAULT'])]);
    expect([retOf(r, 7), retOf(r, 9)]).toEqual([0, -Errno.EINVAL]);
    expect(lockedVm(r)).toBe(16);
  });

  it('munlockall uncharges every locked page, undescribed ones too, and stops FUTURE', () => {
    const r = run2([...setup(), ram(VA, MiB), mlockall(['CURRENT', 'FUTURE'], 300), munlockall, ram(OTHER, 0x10000n)]);
    expect(lockedVm(r)).toBe(0);
  });

  it('keeps the DMA charge through munlockall: 256 mapped, 300 locked, 256 after', () => {
    const r = run2([...setup(), ram(VA, MiB), mapFd(20, 0n, MiB, VA), mlockall(['CURRENT'], 256), munlockall]);
    expect(lockedVm(r)).toBe(256);
    expect(codes(r)).toEqual([]);
  });
});

describe('the memlock answer counts mlock', () => {
  it('needs 128 + 192 = 320 pages when mlock and a map are refused together, with mlock as a cause', () => {
    const r = run2([...limited(), ram(VA, MiB), ram(OTHER, MiB), mlock(VA, 0x80000n), mapFd(20, 0n, 0xc0000n, OTHER)]);
    const a = r.accounting().get(100)!;
    expect(a.requiredPages).toBe(320);
    expect(a.breakdown).toEqual({ direct: 192, pins: 0, shared: 0, mlock: 128 });
    expect(a.refusals).toMatchObject({ count: 1, firstSeq: 9, firstEvent: 'VFIO_IOMMU_MAP_DMA' });
  });

  it('names an mlock as the first refused operation', () => {
    const r = run2([...limited(), ram(VA, MiB), ram(OTHER, MiB), mapFd(20, 0n, 0xc0000n, OTHER), mlock(VA, 0x80000n)]);
    const a = r.accounting().get(100)!;
    expect(a.refusals).toMatchObject({ count: 1, firstSeq: 9, firstEvent: 'mlock' });
    expect(a.requiredPages).toBe(320);
  });

  it('leaves the breakdown without mlock for a process that never locked memory', () => {
    const r = run2([...setup(), ram(VA, MiB), mapFd(20, 0n, MiB, VA)]);
    expect(r.accounting().get(100)!.breakdown).toStrictEqual({ direct: 256, pins: 0, shared: 0 });
  });
});
