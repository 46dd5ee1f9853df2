import { describe, expect, it } from 'vitest';
import { Errno } from '../../src/model/errno.js';
import { GiB, MiB, codes, hx, last, lockedVm, map, run, setup, type Ev } from '../helpers.js';

const EINVAL = -Errno.EINVAL;

function mapArg(arg: Record<string, unknown>): Ev {
  return { type: 'ioctl', pid: 100, fd: 20, cmd: 'VFIO_IOMMU_MAP_DMA', arg };
}

describe('VFIO_IOMMU_MAP_DMA argument checks (vfio_iommu_type1_map_dma, vfio_dma_do_map)', () => {
  const cases: [string, Ev, number][] = [
    ['argsz below minsz', mapArg({ argsz: 16, flags: ['READ'], vaddr: '0x1000', iova: '0x0', size: '0x1000' }), EINVAL],
    ['an unknown flag', mapArg({ flags: ['READ', 'EXEC'], vaddr: '0x1000', iova: '0x0', size: '0x1000' }), EINVAL],
    ['neither prot nor VADDR', mapArg({ flags: [], vaddr: '0x1000', iova: '0x0', size: '0x1000' }), EINVAL],
    ['prot together with VADDR', mapArg({ flags: ['READ', 'VADDR'], vaddr: '0x1000', iova: '0x0', size: '0x1000' }), EINVAL],
    ['size 0', mapArg({ flags: ['READ'], vaddr: '0x1000', iova: '0x0', size: '0x0' }), EINVAL],
    ['a misaligned iova', mapArg({ flags: ['READ'], vaddr: '0x1000', iova: '0x800', size: '0x1000' }), EINVAL],
    ['a misaligned vaddr', mapArg({ flags: ['READ'], vaddr: '0x1800', iova: '0x0', size: '0x1000' }), EINVAL],
    ['a misaligned size', mapArg({ flags: ['READ'], vaddr: '0x1000', iova: '0x0', size: '0x1800' }), EINVAL],
    ['an iova that wraps', mapArg({ flags: ['READ'], vaddr: '0x1000', iova: '0xfffffffffffff000', size: '0x2000' }), EINVAL],
    ['a vaddr that wraps', mapArg({ flags: ['READ'], vaddr: '0xfffffffffffff000', iova: '0x0', size: '0x2000' }), EINVAL],
    ['VADDR with nothing mapped there', mapArg({ flags: ['VADDR'], vaddr: '0x1000', iova: '0x0', size: '0x1000' }), -Errno.ENOENT],
    ['the MSI window', map(0xfee00000n, 0x1000n), EINVAL],
    ['a range across the MSI window', map(0xfe000000n, 0x2000000n), EINVAL],
    ['beyond the 48-bit aperture', map(1n << 48n, 0x1000n), EINVAL],
    ['the last page of the aperture', map((1n << 48n) - 0x1000n, 0x1000n, 0x1000n), 0],
  ];
  for (const [what, ev, errno] of cases) {
    it(`returns ${errno} for ${what}, charging nothing`, () => {
      const r = run([...setup(), ev]);
      expect(last(r).ret).toBe(errno);
      expect(lockedVm(r)).toBe(errno === 0 ? 1 : 0);
      expect(r.vfio!.backends()[0]!.snapshot().dmas.length).toBe(errno === 0 ? 1 : 0);
    });
  }

  it('returns EEXIST for any overlap with an existing mapping, and leaves it as it was', () => {
    const r = run([...setup(), map(0n, 2n * MiB), map(MiB, 2n * MiB), map(0x1ff000n, 0x1000n)]);
    expect(r.outcomes.slice(-3).map((o) => o.ret)).toEqual([0, -Errno.EEXIST, -Errno.EEXIST]);
    expect(lockedVm(r)).toBe(512);
  });

  it('returns ENOSPC once dma_entry_limit mappings exist', () => {
    const r = run([...setup(), map(0n, 0x1000n), map(0x1000n, 0x1000n), map(0x2000n, 0x1000n)], {
      module_params: { dma_entry_limit: 2 },
    });
    expect(r.outcomes.slice(-3).map((o) => o.ret)).toEqual([0, 0, -Errno.ENOSPC]);
    expect(lockedVm(r)).toBe(2);
  });

  it('returns EINVAL with no backend set, ENOTTY on a group fd and EBADF on an unknown fd', () => {
    const pre: Ev[] = [
      { type: 'open', pid: 100, fd: 20, path: '/dev/vfio/vfio' },
      { type: 'open', pid: 100, fd: 21, path: '/dev/vfio/12' },
    ];
    expect(last(run([...pre, map(0n, 0x1000n)])).ret).toBe(EINVAL);
    expect(last(run([...setup(), { ...map(0n, 0x1000n), fd: 21 }])).ret).toBe(-Errno.ENOTTY);
    expect(last(run([...setup(), { ...map(0n, 0x1000n), fd: 33 }])).ret).toBe(-Errno.EBADF);
  });

  it('returns EFAULT for memory gone from the address space, and changes nothing', () => {
    const r = run([
      ...setup(),
      { type: 'mmap', pid: 100, vaddr: '0x7f0000000000', size: hx(4n * MiB), backing: 'anon' },
      { type: 'munmap', pid: 100, vaddr: '0x7f0000200000', size: '0x1000' },
      map(0n, 4n * MiB, 0x7f0000000000n),
      map(0n, 2n * MiB, 0x7f0000000000n),
    ]);
    expect(r.outcomes.slice(-2).map((o) => o.ret)).toEqual([-Errno.EFAULT, 0]);
    expect(lockedVm(r)).toBe(512);
  });
});

describe('locked memory charged by MAP_DMA (vfio_pin_pages_remote)', () => {
  it('succeeds exactly at RLIMIT_MEMLOCK and fails one page above with ENOMEM, leaving locked_vm unchanged', () => {
    const r = run([...setup({ limit: MiB }), map(0n, MiB), map(MiB, 0x1000n)]);
    expect(r.outcomes.slice(-2).map((o) => o.ret)).toEqual([0, -Errno.ENOMEM]);
    expect(lockedVm(r)).toBe(256);
    expect(codes(r)).toEqual(['ACCT_LIMIT']);
    expect(r.findings[0]!.details).toMatchObject({ locked_vm: 256, needed: 1, limit_pages: 256, required_limit_bytes: String(MiB + 0x1000n) });
  });

  it('succeeds below the limit', () => {
    const r = run([...setup({ limit: MiB }), map(0n, MiB - 0x1000n)]);
    expect(last(r).ret).toBe(0);
    expect(lockedVm(r)).toBe(255);
    expect(codes(r)).toEqual([]);
  });

  it('fails a whole map that goes above the limit part-way, with nothing left charged or mapped', () => {
    const r = run([...setup({ limit: 64n * 1024n }), map(0n, 2n * GiB)]);
    expect(last(r).ret).toBe(-Errno.ENOMEM);
    expect(lockedVm(r)).toBe(0);
    const snap = r.vfio!.backends()[0]!.snapshot();
    expect(snap.dmas).toEqual([]);
    expect(snap.dmaAvail).toBe(65535);
    expect(snap.domains[0]!.mappedPages).toBe(0);
  });

  it('ignores the limit with CAP_IPC_LOCK but still counts the pages', () => {
    const r = run([...setup({ limit: 0n, cap: true }), map(0n, GiB)]);
    expect(last(r).ret).toBe(0);
    expect(lockedVm(r)).toBe(262144);
    expect(codes(r)).toEqual([]);
  });

  it('uses CAP_IPC_LOCK as captured at MAP time', () => {
    const r = run([
      ...setup({ limit: 0n, cap: true }),
      map(0n, MiB),
      { type: 'process', pid: 100, op: 'setrlimit', cap_ipc_lock: false },
      map(MiB, MiB),
    ]);
    expect(r.outcomes.slice(-3).map((o) => o.ret)).toEqual([0, 0, -Errno.ENOMEM]);
    expect(lockedVm(r)).toBe(256);
  });

  it('never charges pfnmap (device) memory', () => {
    const r = run([
      ...setup({ limit: 0n }),
      { type: 'mmap', pid: 100, vaddr: '0x7f5000000000', size: hx(256n * MiB), backing: 'pfnmap', pfn: '0xc0000' },
      map(0x8000000000n, 256n * MiB, 0x7f5000000000n),
    ]);
    expect(last(r).ret).toBe(0);
    expect(lockedVm(r)).toBe(0);
  });

  it('charges the same memory twice when it is mapped at two IOVAs', () => {
    const r = run([...setup(), map(0n, MiB, 0x7f0000000000n), map(GiB, MiB, 0x7f0000000000n)]);
    expect(lockedVm(r)).toBe(512);
  });

  it('charges only the anonymous part of a mapping that spans RAM and device memory', () => {
    const r = run([
      ...setup(),
      { type: 'mmap', pid: 100, vaddr: '0x7f0000100000', size: '0x100000', backing: 'pfnmap', pfn: '0xfd000' },
      map(0n, 3n * MiB, 0x7f0000000000n),
    ]);
    expect(lockedVm(r)).toBe(512);
  });

  it('records a mapping without pinning in a container whose only group is mediated', () => {
    const r = run([...setup({ groups: [40] }), map(0n, GiB)], {
      topology: { groups: [{ id: 40, mdev_parent: '0000:00:02.0', devices: ['mdev-a'] }] },
    });
    expect(last(r).ret).toBe(0);
    expect(lockedVm(r)).toBe(0);
    expect(r.vfio!.backends()[0]!.snapshot().dmas[0]).toMatchObject({ iommuMapped: false, charged: 0 });
  });
});

describe('dirty page tracking (vfio_iommu_type1_dirty_pages)', () => {
  const dirty = (flags: string[]): Ev => ({ type: 'ioctl', pid: 100, fd: 20, cmd: 'VFIO_IOMMU_DIRTY_PAGES', arg: { flags } });

  it('refuses v1 containers with EACCES and anything but one known flag with EINVAL', () => {
    expect(last(run([...setup({ v1: true }), dirty(['START'])])).ret).toBe(-Errno.EACCES);
    expect(last(run([...setup(), dirty(['START', 'STOP'])])).ret).toBe(EINVAL);
    expect(last(run([...setup(), dirty([])])).ret).toBe(EINVAL);
  });

  it('refuses, while tracking, a map of more pages than a bitmap can hold (INT_MAX), undoing its charge', () => {
    const r = run([...setup(), dirty(['START']), map(1n << 44n, 8n << 40n, 0x100000000000n), map(1n << 44n, (8n << 40n) - 0x1000n, 0x100000000000n)]);
    expect(r.outcomes.slice(-3).map((o) => o.ret)).toEqual([0, EINVAL, 0]);
    expect(lockedVm(r)).toBe(2 ** 31 - 1);
  });
});
