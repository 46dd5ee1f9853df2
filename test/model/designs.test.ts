/**
 * Where the three designs part ways, one expectation per design for each
 * case (the rules: upstream type1 6.1, the 2016 RFC v5, iommufd 6.12).
 */
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../../src/model/backends/index.js';
import { Errno } from '../../src/model/errno.js';
import { replayText } from '../../src/model/replay/replay-text.js';
import { MiB, hx, map, setup, trace, unmap, type Ev } from '../helpers.js';

type PerDesign<T> = { upstream: T; 'rfc-v5': T; 'iommufd-compat': T };

function each(events: Ev[], header: Ev = {}) {
  return Object.fromEntries(Object.entries(BACKENDS).map(([n, d]) => [n, replayText(trace(events, header), d)])) as PerDesign<ReturnType<typeof replayText>>;
}

function lastRet(events: Ev[], header: Ev = {}): PerDesign<number> {
  const r = each(events, header);
  return Object.fromEntries(Object.entries(r).map(([n, x]) => [n, x.outcomes.at(-1)!.ret])) as PerDesign<number>;
}

function locked(events: Ev[], header: Ev = {}): PerDesign<number> {
  const r = each(events, header);
  return Object.fromEntries(Object.entries(r).map(([n, x]) => [n, x.modelEnv!.processes.get(100)?.lockedVm ?? 0])) as PerDesign<number>;
}

const ioctl = (cmd: string, arg?: unknown): Ev => ({ type: 'ioctl', pid: 100, fd: 20, cmd, ...(arg === undefined ? {} : { arg }) });
const same = <T>(v: T): PerDesign<T> => ({ upstream: v, 'rfc-v5': v, 'iommufd-compat': v });
const E = (n: keyof typeof Errno) => -Errno[n];

describe('MAP_DMA by design', () => {
  const cases: [string, Ev[], PerDesign<number>][] = [
    ['an iova that wraps', [map(0xfffffffffffff000n, 0x2000n, 0x1000n)], { upstream: E('EINVAL'), 'rfc-v5': E('EINVAL'), 'iommufd-compat': E('EOVERFLOW') }],
    ['no READ or WRITE', [map(0n, MiB, 0x7f0000000000n, 100, [])], { upstream: E('EINVAL'), 'rfc-v5': E('EINVAL'), 'iommufd-compat': 0 }],
    ['the VADDR flag', [map(0n, MiB, 0x7f0000000000n, 100, ['VADDR'])], { upstream: E('ENOENT'), 'rfc-v5': E('ENOENT'), 'iommufd-compat': E('EINVAL') }],
    ['the MSI window', [map(0xfee00000n, 0x1000n)], same(E('EINVAL'))],
    ['an overlap', [map(0n, MiB), map(0n, MiB)], same(E('EEXIST'))],
  ];
  for (const [what, evs, want] of cases) {
    it(`returns each design's errno for ${what}`, () => {
      expect(lastRet([...setup(), ...evs])).toEqual(want);
    });
  }

  it('enforces dma_entry_limit in type1 only', () => {
    expect(lastRet([...setup(), map(0n, 0x1000n), map(0x1000n, 0x1000n), map(0x2000n, 0x1000n)], { module_params: { dma_entry_limit: 2 } })).toEqual({
      upstream: E('ENOSPC'),
      'rfc-v5': E('ENOSPC'),
      'iommufd-compat': 0,
    });
  });

  it('charges a CAP_IPC_LOCK mapper under type1 and not at all under iommufd', () => {
    expect(locked([...setup({ limit: 0n, cap: true }), map(0n, 4n * MiB)])).toEqual({ upstream: 1024, 'rfc-v5': 1024, 'iommufd-compat': 0 });
  });

  it('pins device memory without a charge under type1, and cannot pin it under iommufd', () => {
    const evs = [...setup(), { type: 'mmap', pid: 100, vaddr: '0x7f5000000000', size: hx(MiB), backing: 'pfnmap', pfn: '0xc0000' }, map(1n << 40n, MiB, 0x7f5000000000n)];
    expect(lastRet(evs)).toEqual({ upstream: 0, 'rfc-v5': 0, 'iommufd-compat': E('EFAULT') });
    expect(locked(evs)).toEqual(same(0));
  });
});

describe('UNMAP_DMA by design', () => {
  const two = [map(0n, MiB), map(MiB, MiB)];

  it('refuses a v2 range that ends inside a mapping: EINVAL, or ENOENT after removing the mappings below', () => {
    const evs = [...setup(), ...two, unmap(0n, MiB + 0x1000n)];
    expect(lastRet(evs)).toEqual({ upstream: E('EINVAL'), 'rfc-v5': E('EINVAL'), 'iommufd-compat': E('ENOENT') });
    expect(locked(evs)).toEqual({ upstream: 512, 'rfc-v5': 512, 'iommufd-compat': 256 });
  });

  it('answers an empty range with size 0 under type1 and ENOENT under iommufd', () => {
    expect(lastRet([...setup(), ...two, unmap(8n * MiB, MiB)])).toEqual({ upstream: 0, 'rfc-v5': 0, 'iommufd-compat': E('ENOENT') });
  });

  it('v1: an unmap inside a mapping does nothing under type1 and cuts the mapping under iommufd', () => {
    const evs = [...setup({ v1: true }), map(0n, 2n * MiB), unmap(MiB, MiB / 2n)];
    const r = each(evs);
    expect(Object.fromEntries(Object.entries(r).map(([n, x]) => [n, x.outcomes.at(-1)]))).toEqual({
      upstream: { seq: 7, ret: 0, out: { size: '0x0' } },
      'rfc-v5': { seq: 7, ret: 0, out: { size: '0x0' } },
      'iommufd-compat': { seq: 7, ret: 0, out: { size: '0x80000' } },
    });
    expect(locked(evs)).toEqual({ upstream: 512, 'rfc-v5': 512, 'iommufd-compat': 384 });
    expect(r['iommufd-compat'].vfio!.backends()[0]!.snapshot().dmas.map((d) => [hx(d.iova), hx(d.size), d.charged])).toEqual([
      ['0x0', '0x100000', 256],
      ['0x180000', '0x80000', 128],
    ]);
    expect(r['iommufd-compat'].findings).toEqual([]);
  });

  it('knows VADDR and GET_DIRTY_BITMAP under type1 only', () => {
    expect(lastRet([...setup(), ...two, unmap(0n, MiB, ['VADDR'])])).toEqual({ upstream: 0, 'rfc-v5': 0, 'iommufd-compat': E('EINVAL') });
  });
});

describe('container ioctls by design', () => {
  it('answers CHECK_EXTENSION, GET_INFO, SET_IOMMU and DIRTY_PAGES each its own way', () => {
    expect(lastRet([...setup(), ioctl('VFIO_CHECK_EXTENSION', 'VFIO_UPDATE_VADDR')])).toEqual({ upstream: 1, 'rfc-v5': 1, 'iommufd-compat': 0 });
    expect(lastRet([...setup(), ioctl('VFIO_IOMMU_DIRTY_PAGES', { flags: ['START'] })])).toEqual({ upstream: 0, 'rfc-v5': 0, 'iommufd-compat': E('ENOTTY') });
    const pre: Ev[] = [
      { type: 'open', pid: 100, fd: 20, path: '/dev/vfio/vfio' },
      { type: 'open', pid: 100, fd: 21, path: '/dev/vfio/12' },
      { type: 'ioctl', pid: 100, fd: 21, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 20 } },
    ];
    expect(lastRet([...pre, ioctl('VFIO_SET_IOMMU', 'VFIO_SPAPR_TCE_IOMMU')])).toEqual({ upstream: E('ENODEV'), 'rfc-v5': E('ENODEV'), 'iommufd-compat': E('EINVAL') });
    const r = each([...setup(), ioctl('VFIO_IOMMU_GET_INFO')]);
    expect(Object.fromEntries(Object.entries(r).map(([n, x]) => [n, x.outcomes.at(-1)!.out!.dma_avail]))).toEqual({
      upstream: 65535,
      'rfc-v5': 65535,
      'iommufd-compat': 4294967295,
    });
  });

  it('refuses a group whose reserved region holds a mapping: EINVAL, or EADDRINUSE under iommufd', () => {
    const topology = { iommus: [{ id: 'rmrr', reserved: [{ start: '0x0', end: '0xfffff' }] }], groups: [{ id: 17, iommu: 'rmrr' }] };
    const evs = [...setup(), map(0n, MiB), { type: 'open', pid: 100, fd: 22, path: '/dev/vfio/17' }, { type: 'ioctl', pid: 100, fd: 22, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 20 } }];
    expect(lastRet(evs, { topology })).toEqual({ upstream: E('EINVAL'), 'rfc-v5': E('EINVAL'), 'iommufd-compat': E('EADDRINUSE') });
  });
});

describe('external pins by design', () => {
  const dev = 'mdev-a';
  const topology = { groups: [{ id: 12, iommu: 'default' }, { id: 40, mdev_parent: '0000:00:02.0', devices: [dev] }] };
  const T = { topology };
  const pin = (iova: bigint, npage: number): Ev => ({ type: 'pin', dev, iova: hx(iova), npage, prot: ['READ', 'WRITE'] });
  const devOpen: Ev = { type: 'device', dev, op: 'open' };
  const join: Ev[] = [
    { type: 'open', pid: 100, fd: 22, path: '/dev/vfio/12' },
    { type: 'ioctl', pid: 100, fd: 22, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 20 } },
  ];

  it('refuses pins in a v1 container only upstream (EACCES)', () => {
    expect(lastRet([...setup({ groups: [40], v1: true }), map(0n, MiB), devOpen, pin(0n, 4)], T)).toEqual({ upstream: E('EACCES'), 'rfc-v5': 4, 'iommufd-compat': 4 });
  });

  it('moves the charge when the first IOMMU group joins, except rfc-v5, which charges the pinned pages again', () => {
    const evs = [...setup({ groups: [40] }), map(0n, MiB), devOpen, pin(0n, 16), ...join];
    expect(locked(evs, T)).toEqual({ upstream: 256, 'rfc-v5': 272, 'iommufd-compat': 256 });
    const r = each(evs, T);
    expect(r['rfc-v5'].findings.map((f) => [f.code, f.details.pages])).toEqual([['ACCT_DOUBLE_CHARGE', 16]]);
    expect(r.upstream.findings).toEqual([]);
  });

  it('when the last IOMMU group leaves: upstream and iommufd re-account to the pins; rfc-v5 drops the mappings and keeps its pins', () => {
    const evs = [...setup({ groups: [40] }), map(0n, MiB), devOpen, pin(0n, 16), ...join, { type: 'close', pid: 100, fd: 22 }];
    expect(locked(evs, T)).toEqual({ upstream: 16, 'rfc-v5': 16, 'iommufd-compat': 16 });
    const r = each(evs, T);
    expect(Object.fromEntries(Object.entries(r).map(([n, x]) => [n, x.vfio!.backends()[0]!.snapshot().dmas.length]))).toEqual({
      upstream: 1,
      'rfc-v5': 0,
      'iommufd-compat': 1,
    });
    expect(r['rfc-v5'].findings.map((f) => f.code)).toEqual(['ACCT_DOUBLE_CHARGE', 'PIN_LEAK']);
  });

  it('charges a repeated pin of one page once, except rfc-v5, and un-charges on the last unpin', () => {
    const evs = [...setup({ groups: [40] }), map(0n, MiB), devOpen, pin(0n, 1), pin(0n, 1), pin(0n, 1)];
    expect(locked(evs, T)).toEqual({ upstream: 1, 'rfc-v5': 3, 'iommufd-compat': 1 });
    const unpin: Ev = { type: 'unpin', dev, iova: '0x0', npage: 1 };
    expect(locked([...evs, unpin, unpin], T)).toEqual({ upstream: 1, 'rfc-v5': 1, 'iommufd-compat': 1 });
    expect(locked([...evs, unpin, unpin, unpin], T)).toEqual(same(0));
  });
});
