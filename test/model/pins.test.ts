import { describe, expect, it } from 'vitest';
import { Errno } from '../../src/model/errno.js';
import { MiB, codes, last, lockedVm, map, run, setup, type Ev } from '../helpers.js';

const dev = 'mdev-a';
const topology = {
  groups: [
    { id: 12, iommu: 'default', devices: ['0000:01:00.0'] },
    { id: 40, mdev_parent: '0000:00:02.0', devices: [dev] },
  ],
};
const T = { topology };
const pin = (iova: bigint, npage: number, prot = ['READ', 'WRITE']): Ev => ({ type: 'pin', dev, iova: '0x' + iova.toString(16), npage, prot });
const unpin = (iova: bigint, npage: number): Ev => ({ type: 'unpin', dev, iova: '0x' + iova.toString(16), npage });
const devOpen: Ev = { type: 'device', dev, op: 'open' };

describe('external pins in a mediated-only container (vfio_iommu_type1_pin_pages)', () => {
  const base = [...setup({ groups: [40] }), map(0n, MiB), devOpen];

  it('charges each newly pinned page once; a repeated pin adds a reference, not a charge', () => {
    const r = run([...base, pin(0n, 16), pin(0n, 4)], T);
    expect(r.outcomes.slice(-2).map((o) => o.ret)).toEqual([16, 4]);
    expect(lockedVm(r)).toBe(16);
  });

  it('uncharges a page only when its last reference is unpinned', () => {
    const r = run([...base, pin(0n, 16), pin(0n, 4), unpin(0n, 4)], T);
    expect(lockedVm(r)).toBe(16);
    const r2 = run([...base, pin(0n, 16), pin(0n, 4), unpin(0n, 4), unpin(0n, 16)], T);
    expect(lockedVm(r2)).toBe(0);
    expect(codes(r2)).toEqual([]);
  });

  it('fails a pin outside any mapping with EINVAL and undoes the pages it pinned', () => {
    const r = run([...base, pin(MiB - 0x2000n, 4)], T);
    expect(last(r).ret).toBe(-Errno.EINVAL);
    expect(lockedVm(r)).toBe(0);
  });

  it('fails a pin asking for a prot the mapping lacks with EPERM', () => {
    const r = run([...setup({ groups: [40] }), map(0n, MiB, undefined, 100, ['READ']), devOpen, pin(0n, 1, ['WRITE'])], T);
    expect(last(r).ret).toBe(-Errno.EPERM);
  });

  it('fails more than 512 pages with E2BIG and 0 pages with EINVAL', () => {
    expect(last(run([...base, pin(0n, 513)], T)).ret).toBe(-Errno.E2BIG);
    expect(last(run([...base, pin(0n, 0)], T)).ret).toBe(-Errno.EINVAL);
  });

  it('fails a pin from a device that is not open with EINVAL', () => {
    expect(last(run([...setup({ groups: [40] }), map(0n, MiB), pin(0n, 1)], T)).ret).toBe(-Errno.EINVAL);
  });

  it('fails pins in a v1 container with EACCES', () => {
    expect(last(run([...setup({ groups: [40], v1: true }), map(0n, MiB), devOpen, pin(0n, 1)], T)).ret).toBe(-Errno.EACCES);
  });

  it('fails a pin past RLIMIT_MEMLOCK with ENOMEM, undoing the pages of that call', () => {
    const r = run([...setup({ groups: [40], limit: 0x4000n }), map(0n, MiB), devOpen, pin(0n, 2), pin(0x2000n, 4)], T);
    expect(r.outcomes.slice(-2).map((o) => o.ret)).toEqual([2, -Errno.ENOMEM]);
    expect(lockedVm(r)).toBe(2);
    expect(codes(r)).toEqual(['ACCT_LIMIT']);
  });

  it('reports an unpin of a page that is not pinned', () => {
    const r = run([...base, unpin(0n, 1)], T);
    expect(codes(r)).toEqual(['UNPIN_NOT_PINNED']);
  });
});

describe('external pins with an IOMMU-backed domain in the container', () => {
  it('leave locked_vm unchanged: the mapping already charged the pages', () => {
    const r = run([...setup({ groups: [12, 40] }), map(0n, MiB), devOpen, pin(0n, 16)], T);
    expect(last(r).ret).toBe(16);
    expect(lockedVm(r)).toBe(256);
  });

  it('move the charge when the first IOMMU group joins and when it leaves (64 KiB -> 1 MiB -> 64 KiB)', () => {
    const join: Ev[] = [
      { type: 'open', pid: 100, fd: 22, path: '/dev/vfio/12' },
      { type: 'ioctl', pid: 100, fd: 22, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 20 } },
    ];
    const before = run([...setup({ groups: [40] }), map(0n, MiB), devOpen, pin(0n, 16)], T);
    expect(lockedVm(before)).toBe(16);
    const joined = run([...setup({ groups: [40] }), map(0n, MiB), devOpen, pin(0n, 16), ...join], T);
    expect(lockedVm(joined)).toBe(256);
    const left = run([...setup({ groups: [40] }), map(0n, MiB), devOpen, pin(0n, 16), ...join, { type: 'close', pid: 100, fd: 22 }], T);
    expect(lockedVm(left)).toBe(16);
    expect(codes(left)).toEqual([]);
  });

  it('reports PIN_LEAK when an unmap finds pages the driver kept after the notification', () => {
    const r = run([...setup({ groups: [40] }), map(0n, MiB), devOpen, pin(0n, 16), { type: 'ioctl', pid: 100, fd: 20, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: [], iova: 0, size: '0x100000' } }], T);
    expect(last(r)).toMatchObject({ ret: 0, out: { size: '0x100000' } });
    expect(codes(r)).toEqual(['PIN_LEAK']);
    expect(lockedVm(r)).toBe(0);
  });
});
