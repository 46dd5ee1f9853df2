import { describe, expect, it } from 'vitest';
import { Errno } from '../../src/model/errno.js';
import { GiB, MiB, codes, hx, last, lockedVm, map, run, setup, type Ev } from '../helpers.js';

const pid = 100;
const open = (fd: number, path: string): Ev => ({ type: 'open', pid, fd, path });
const close = (fd: number): Ev => ({ type: 'close', pid, fd });
const ioctl = (fd: number, cmd: string, arg?: unknown): Ev => ({ type: 'ioctl', pid, fd, cmd, ...(arg === undefined ? {} : { arg }) });
const setContainer = (groupFd: number, containerFd = 20): Ev => ioctl(groupFd, 'VFIO_GROUP_SET_CONTAINER', { container_fd: containerFd });
const setIommu = (t = 'VFIO_TYPE1v2_IOMMU'): Ev => ioctl(20, 'VFIO_SET_IOMMU', t);

/** Units: dmar0 coherent (default-like), dmar1 not coherent, dmar2 without interrupt remapping, dmar3 a 39-bit aperture. */
const topology = {
  iommus: [
    { id: 'dmar0', pgsize_bitmap: '0x40201000', cache_coherent: true },
    { id: 'dmar1', pgsize_bitmap: '0x201000', cache_coherent: false },
    { id: 'dmar2', cache_coherent: true, interrupt_remapping: false },
    { id: 'dmar3', cache_coherent: true, aperture: ['0x0', '0x7fffffffff'], reserved: [{ start: '0xfee00000', end: '0xfeefffff', type: 'msi' }] },
    { id: 'dmar4', cache_coherent: true, reserved: [{ start: '0x0', end: '0xfffff', type: 'rmrr' }] },
  ],
  groups: [
    { id: 12, iommu: 'dmar0', devices: ['0000:01:00.0'] },
    { id: 13, iommu: 'dmar0', devices: ['0000:02:00.0'] },
    { id: 14, iommu: 'dmar1', devices: ['0000:03:00.0'] },
    { id: 15, iommu: 'dmar2', devices: ['0000:04:00.0'] },
    { id: 16, iommu: 'dmar3', devices: ['0000:05:00.0'] },
    { id: 17, iommu: 'dmar4', devices: ['0000:06:00.0'] },
    { id: 40, mdev_parent: '0000:00:02.0', devices: ['mdev-a'] },
  ],
};
const T = { topology };

function snap(r: ReturnType<typeof run>) {
  return r.vfio!.backends()[0]!.snapshot();
}

describe('container ioctls before a backend (vfio_fops_unl_ioctl)', () => {
  it('answers GET_API_VERSION with 0 and CHECK_EXTENSION from the registered type1 driver', () => {
    const r = run([
      open(20, '/dev/vfio/vfio'),
      ioctl(20, 'VFIO_GET_API_VERSION'),
      ioctl(20, 'VFIO_CHECK_EXTENSION', 'VFIO_TYPE1v2_IOMMU'),
      ioctl(20, 'VFIO_CHECK_EXTENSION', 'VFIO_UNMAP_ALL'),
      ioctl(20, 'VFIO_CHECK_EXTENSION', 'VFIO_DMA_CC_IOMMU'),
      ioctl(20, 'VFIO_CHECK_EXTENSION', 'VFIO_SPAPR_TCE_IOMMU'),
      ioctl(20, 'VFIO_IOMMU_GET_INFO'),
    ]);
    expect(r.outcomes.map((o) => o.ret)).toEqual([20, 0, 1, 1, 0, 0, -Errno.EINVAL]);
  });
});

describe('VFIO_SET_IOMMU (vfio_ioctl_set_iommu)', () => {
  it('returns EINVAL without a group, and when a backend is already set', () => {
    expect(last(run([open(20, '/dev/vfio/vfio'), setIommu()])).ret).toBe(-Errno.EINVAL);
    expect(last(run([...setup(), setIommu()])).ret).toBe(-Errno.EINVAL);
  });

  it('returns ENODEV for a backend type no driver supports', () => {
    const r = run([open(20, '/dev/vfio/vfio'), open(21, '/dev/vfio/12'), setContainer(21), setIommu('VFIO_SPAPR_TCE_IOMMU')]);
    expect(last(r).ret).toBe(-Errno.ENODEV);
  });

  it("propagates a group's attach error and leaves the container without a backend", () => {
    const r = run([open(20, '/dev/vfio/vfio'), open(21, '/dev/vfio/12'), open(22, '/dev/vfio/15'), setContainer(21), setContainer(22), setIommu(), map(0n, MiB)], T);
    expect(r.outcomes.slice(-2).map((o) => o.ret)).toEqual([-Errno.EPERM, -Errno.EINVAL]);
    expect(r.vfio!.backends()).toEqual([]);
  });
});

describe('VFIO_GROUP_SET_CONTAINER (vfio_group_ioctl_set_container)', () => {
  it('returns EBADF for an fd that is not open', () => {
    expect(last(run([open(21, '/dev/vfio/12'), setContainer(21, 30)])).ret).toBe(-Errno.EBADF);
  });

  it('returns EINVAL for an fd that is not a container', () => {
    expect(last(run([open(21, '/dev/vfio/12'), open(22, '/dev/vfio/13'), setContainer(21, 22)])).ret).toBe(-Errno.EINVAL);
  });

  it('returns EINVAL when the group already has a container', () => {
    expect(last(run([...setup(), open(30, '/dev/vfio/vfio'), setContainer(21, 30)])).ret).toBe(-Errno.EINVAL);
  });

  it('returns EPERM attaching a group without interrupt remapping, unless allow_unsafe_interrupts', () => {
    const steps = [...setup(), open(22, '/dev/vfio/15'), setContainer(22)];
    expect(last(run(steps, T)).ret).toBe(-Errno.EPERM);
    expect(last(run(steps, { ...T, module_params: { allow_unsafe_interrupts: true } })).ret).toBe(0);
  });

  it('returns EINVAL when the new aperture would drop an existing mapping', () => {
    const r = run([...setup(), map(1n << 40n, MiB), open(22, '/dev/vfio/16'), setContainer(22)], T);
    expect(last(r).ret).toBe(-Errno.EINVAL);
    expect(snap(r).domains.map((d) => d.groups)).toEqual([[12]]);
  });

  it('returns EINVAL when a reserved region of the group overlaps an existing mapping', () => {
    const r = run([...setup(), map(0n, MiB), open(22, '/dev/vfio/17'), setContainer(22)], T);
    expect(last(r).ret).toBe(-Errno.EINVAL);
  });

  it('narrows the valid IOVA ranges to the new aperture', () => {
    const r = run([...setup(), open(22, '/dev/vfio/16'), setContainer(22), ioctl(20, 'VFIO_IOMMU_GET_INFO'), map(1n << 40n, MiB)], T);
    expect(r.outcomes.at(-2)!.out).toEqual({
      iova_pgsizes: '0x40201000',
      iova_ranges: [['0x0', '0xfedfffff'], ['0xfef00000', '0x7fffffffff']],
      dma_avail: 65535,
    });
    expect(last(r).ret).toBe(-Errno.EINVAL);
  });

  it('joins a compatible group to the existing domain without a second charge', () => {
    const r = run([...setup(), map(0n, GiB), open(22, '/dev/vfio/13'), setContainer(22)], T);
    expect(last(r).ret).toBe(0);
    expect(snap(r).domains.map((d) => d.groups)).toEqual([[13, 12]]);
    expect(lockedVm(r)).toBe(262144);
  });

  it('replays every mapping into a new domain for an incompatible group, charging nothing more', () => {
    const r = run([...setup(), map(0n, GiB), map(4n * GiB, MiB), open(22, '/dev/vfio/14'), setContainer(22), ioctl(20, 'VFIO_IOMMU_GET_INFO'), ioctl(20, 'VFIO_CHECK_EXTENSION', 'VFIO_DMA_CC_IOMMU')], T);
    expect(r.outcomes.at(-3)!.ret).toBe(0);
    const s = snap(r);
    expect(s.domains.map((d) => [d.groups, d.cacheCoherent, d.mappedPages])).toEqual([
      [[14], false, 262400],
      [[12], true, 262400],
    ]);
    expect(lockedVm(r)).toBe(262400);
    // pgsize_bitmap is the AND of the domains' page sizes.
    expect(r.outcomes.at(-2)!.out!.iova_pgsizes).toBe('0x201000');
    expect(last(r).ret).toBe(0);
    expect(codes(r)).toEqual([]);
  });
});

describe('VFIO_GROUP_UNSET_CONTAINER and GET_STATUS', () => {
  it('reports CONTAINER_SET only while the group is in a container', () => {
    const r = run([open(20, '/dev/vfio/vfio'), open(21, '/dev/vfio/12'), ioctl(21, 'VFIO_GROUP_GET_STATUS'), setContainer(21), ioctl(21, 'VFIO_GROUP_GET_STATUS')]);
    expect(r.outcomes[2]!.out).toEqual({ flags: ['VIABLE'] });
    expect(r.outcomes[4]!.out).toEqual({ flags: ['VIABLE', 'CONTAINER_SET'] });
  });

  it('returns EINVAL when the group has no container', () => {
    expect(last(run([open(21, '/dev/vfio/12'), ioctl(21, 'VFIO_GROUP_UNSET_CONTAINER')])).ret).toBe(-Errno.EINVAL);
  });

  it('returns EBUSY while a device of the group is open', () => {
    const r = run([...setup(), { type: 'device', dev: '0000:01:00.0', op: 'open' }, ioctl(21, 'VFIO_GROUP_UNSET_CONTAINER')], T);
    expect(last(r).ret).toBe(-Errno.EBUSY);
  });

  it('releases the backend when the last group leaves: unmapped, unpinned, uncharged', () => {
    const r = run([...setup(), map(0n, GiB), ioctl(21, 'VFIO_GROUP_UNSET_CONTAINER'), map(0n, MiB)]);
    expect(r.outcomes.slice(-2).map((o) => o.ret)).toEqual([0, -Errno.EINVAL]);
    expect(lockedVm(r)).toBe(0);
    expect(r.vfio!.backends()).toEqual([]);
  });
});

describe('release paths', () => {
  it('keeps the mappings after the container fd is closed while a group holds it', () => {
    const r = run([...setup(), map(0n, GiB), close(20)]);
    expect(lockedVm(r)).toBe(262144);
    const r2 = run([...setup(), map(0n, GiB), close(20), close(21)]);
    expect(lockedVm(r2)).toBe(0);
    expect(codes(r2)).toEqual([]);
  });

  it('detaching one of two domains keeps the mappings and the charge', () => {
    const r = run([...setup(), open(22, '/dev/vfio/14'), setContainer(22), map(0n, GiB), close(22)], T);
    expect(lockedVm(r)).toBe(262144);
    expect(snap(r).domains.map((d) => d.groups)).toEqual([[12]]);
  });

  it('a process exit closes every fd and uncharges everything', () => {
    const r = run([...setup(), map(0n, GiB), map(GiB, GiB), { type: 'process', pid, op: 'exit' }]);
    expect(r.lockedVm().current.get(pid)).toBe(0);
    expect(r.lockedVm().peak.get(pid)).toBe(524288);
    expect(codes(r)).toEqual([]);
  });

  it('a second open of a group file is EBUSY; a closed group can be opened again', () => {
    const r = run([open(21, '/dev/vfio/12'), open(22, '/dev/vfio/12'), close(21), open(23, '/dev/vfio/12')]);
    expect(r.outcomes.map((o) => o.ret)).toEqual([21, -Errno.EBUSY, 0, 23]);
  });

  it('close of an fd that is not open is EBADF', () => {
    expect(last(run([close(7)])).ret).toBe(-Errno.EBADF);
  });

  it('two containers mapping the same memory charge it twice', () => {
    const r = run([
      ...setup(),
      map(0n, GiB, 0x7f0000000000n),
      open(30, '/dev/vfio/vfio'),
      open(31, '/dev/vfio/13'),
      setContainer(31, 30),
      ioctl(30, 'VFIO_SET_IOMMU', 'VFIO_TYPE1v2_IOMMU'),
      { ...map(0n, GiB, 0x7f0000000000n), fd: 30 },
    ], T);
    expect(last(r).ret).toBe(0);
    expect(lockedVm(r)).toBe(524288);
  });
});

describe('VFIO_IOMMU_GET_INFO', () => {
  it('reports the page sizes, the ranges minus the MSI window and the mappings left', () => {
    const r = run([...setup(), map(0n, MiB), ioctl(20, 'VFIO_IOMMU_GET_INFO')]);
    expect(last(r).out).toEqual({
      iova_pgsizes: '0x40201000',
      iova_ranges: [['0x0', '0xfedfffff'], ['0xfef00000', hx((1n << 48n) - 1n)]],
      dma_avail: 65534,
    });
  });

  it('reports PAGE_MASK page sizes and no ranges for a mediated-only container', () => {
    const r = run([...setup({ groups: [40] }), ioctl(20, 'VFIO_IOMMU_GET_INFO')], T);
    expect(last(r).out).toEqual({ iova_pgsizes: '0xfffffffffffff000', iova_ranges: [], dma_avail: 65535 });
  });
});

describe('observed results', () => {
  it('reports RET_MISMATCH when the trace saw another result, and ACCT_MISMATCH for locked_vm', () => {
    const r = run([...setup(), { ...map(0n, MiB), ret: 'ENOMEM', locked_vm: 0 }]);
    expect(codes(r)).toEqual(['RET_MISMATCH', 'ACCT_MISMATCH']);
    expect(r.findings[0]!.details).toMatchObject({ observed: -12, model: 0 });
    expect(r.findings[1]!.details).toMatchObject({ observed: 0, model: 256 });
  });

  it('compares out fields by value whatever their JSON form', () => {
    const ok = run([...setup(), map(0n, MiB), { ...map(0n, 0n), cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: [], iova: 0, size: 1048576 }, ret: 0, out: { size: 1048576 } }]);
    expect(codes(ok)).toEqual([]);
    const bad = run([...setup(), map(0n, MiB), { ...map(0n, 0n), cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: [], iova: 0, size: 1048576 }, ret: 0, out: { size: '0x1000' } }]);
    expect(codes(bad)).toEqual(['RET_MISMATCH']);
  });

  it('reports an unknown ioctl once per command, as info', () => {
    const r = run([...setup(), ioctl(21, 'VFIO_GROUP_GET_DEVICE_FD', 'x'), ioctl(21, 'VFIO_GROUP_GET_DEVICE_FD', 'y'), ioctl(21, 'VFIO_DEVICE_RESET')]);
    expect(r.findings.map((f) => [f.code, f.severity, f.details.cmd])).toEqual([
      ['TRACE_UNKNOWN_CMD', 'info', 'VFIO_GROUP_GET_DEVICE_FD'],
      ['TRACE_UNKNOWN_CMD', 'info', 'VFIO_DEVICE_RESET'],
    ]);
  });
});

describe('attach replay failure (vfio_iommu_replay)', () => {
  it('fails the first IOMMU group of a mediated-only container with ENOMEM when the pins exceed the limit, changing nothing', () => {
    const r = run(
      [
        ...setup({ groups: [40], limit: MiB }),
        map(0n, 2n * MiB),
        open(22, '/dev/vfio/12'),
        setContainer(22),
        ioctl(20, 'VFIO_IOMMU_GET_INFO'),
      ],
      T,
    );
    expect(r.outcomes.at(-2)!.ret).toBe(-Errno.ENOMEM);
    expect(lockedVm(r)).toBe(0);
    expect(snap(r).domains).toEqual([]);
    expect(snap(r).dmas[0]).toMatchObject({ iommuMapped: false, charged: 0 });
    expect(last(r).out).toMatchObject({ iova_pgsizes: '0xfffffffffffff000' });
    expect(codes(r)).toEqual(['ACCT_LIMIT']);
  });
});

describe('regressions found by the reference model', () => {
  it('replay-into-domain-outside-aperture: a mediated-only container has no IOVA list, so attaching a group whose aperture misses a mapping fails in the IOMMU driver (EFAULT), not in vfio_iommu_aper_conflict', () => {
    const r = run([...setup({ groups: [40] }), map(0x1a000n, 0x7000n), open(22, '/dev/vfio/16'), setContainer(22)], {
      topology: { ...topology, iommus: [...topology.iommus, { id: 'small', aperture: ['0x0', '0x1ffff'] }], groups: [...topology.groups.filter((g) => g.id !== 16), { id: 16, iommu: 'small' }] },
    });
    expect(last(r).ret).toBe(-Errno.EFAULT);
    expect(lockedVm(r)).toBe(0);
    expect(snap(r).domains).toEqual([]);
    expect(codes(r)).toEqual([]);
  });
});
