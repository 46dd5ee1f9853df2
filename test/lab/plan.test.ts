/** What the lab refuses before booting, and the steps it writes: no QEMU needed. */
import { describe, expect, it } from 'vitest';
import { planTrace } from '../../src/lab/plan.js';

const header = { type: 'header', format: 'vfio-trace', version: 1, trace_id: 't' };
const v2 = { ...header, version: 2, topology: { groups: [{ id: 12, devices: ['0000:01:00.0'] }] } };
const limits = { guestMemBytes: 1n << 30n };
const start = { type: 'process', seq: 1, pid: 7, op: 'start', memlock_limit: '0x100000', cap_ipc_lock: false };
const base = [
  start,
  { type: 'open', seq: 2, pid: 7, fd: 20, path: '/dev/vfio/vfio' },
  { type: 'open', seq: 3, pid: 7, fd: 21, path: '/dev/vfio/12' },
  { type: 'ioctl', seq: 4, pid: 7, fd: 21, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 20 } },
  { type: 'ioctl', seq: 5, pid: 7, fd: 20, cmd: 'VFIO_SET_IOMMU', arg: 'VFIO_TYPE1v2_IOMMU' },
];
const map = (seq: number, size: string, pid = 7, vaddr = '0x7f0000000000', fd = 20) => ({
  type: 'ioctl', seq, pid, fd, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: ['READ', 'WRITE'], vaddr, iova: '0x0', size },
});
const steps = (objects: Record<string, unknown>[]) => {
  const r = planTrace(objects, limits);
  if (!r.ok) throw new Error(r.reason);
  return r.plan.steps;
};

describe('lab plan', () => {
  it('writes the helper steps, mapping undescribed memory first and groups to guest devices', () => {
    const r = planTrace([header, ...base, map(6, '0x200000')], limits);
    expect(r).toEqual({
      ok: true,
      plan: {
        traceId: 't',
        pids: [7],
        groups: [12],
        mdevs: [],
        steps: [
          '0 0 mmap 0x7f0000000000 0x200000 anon',
          '1 0 limit 0x100000',
          '2 0 open 20 /dev/vfio/vfio',
          '3 0 open 21 /dev/vfio/@G0',
          '4 0 ioctl 21 VFIO_GROUP_SET_CONTAINER 20',
          '5 0 ioctl 20 VFIO_SET_IOMMU 3',
          '6 0 ioctl 20 VFIO_IOMMU_MAP_DMA READ,WRITE 0x7f0000000000 0x0 0x200000',
        ],
      },
    });
  });

  it('refuses pfnmap memory that is no device mmap, more memory than the guest has, and a process that is no fork of the first', () => {
    expect(planTrace([header, ...base, { type: 'mmap', seq: 6, pid: 7, vaddr: '0x1000', size: '0x1000', backing: 'pfnmap' }], limits)).toEqual({
      ok: false,
      reason: 'seq 6: pfnmap memory (device MMIO) cannot be made in the lab guest but by an mmap of a VFIO device fd',
    });
    expect(planTrace([header, ...base, map(6, '0x80000000')], limits)).toEqual({ ok: false, reason: 'the trace maps 0x80000000 bytes, more than the guest\'s 0x40000000 of memory' });
    expect(planTrace([header, ...base, { ...start, seq: 6, pid: 8 }], limits)).toEqual({
      ok: false,
      reason: "seq 6: pid 8 is neither the trace's first process (7) nor a child it forked; the lab runs one process and its forks",
    });
    expect(planTrace([header, ...base, { type: 'process', seq: 6, pid: 7, op: 'exit' }, map(7, '0x1000')], limits)).toEqual({ ok: false, reason: 'seq 7: pid 7 has exited' });
    expect(planTrace([v2, ...base, { type: 'dup', seq: 6, pid: 7, fd: 20, newfd: 901, call: 'dup2' }], limits)).toEqual({
      ok: false,
      reason: "seq 6: fd 901 is among the lab helper's own descriptors (900 and up)",
    });
  });

  it('runs a forked child in its own helper process, with its undescribed memory set up after the fork and what its parent had inherited', () => {
    const s = steps([
      v2,
      ...base,
      map(6, '0x200000'),
      { type: 'process', seq: 7, pid: 8, op: 'fork', parent: 7 },
      map(8, '0x200000', 8, '0x7f0000000000'),
      { ...map(9, '0x1000', 8, '0x7f5000000000'), arg: { flags: ['READ'], vaddr: '0x7f5000000000', iova: '0x400000', size: '0x1000' } },
      { type: 'process', seq: 10, pid: 8, op: 'exit' },
      { type: 'process', seq: 11, pid: 7, op: 'exit' },
    ]);
    expect(s).toEqual([
      '0 0 mmap 0x7f0000000000 0x200000 anon',
      '1 0 limit 0x100000',
      '2 0 open 20 /dev/vfio/vfio',
      '3 0 open 21 /dev/vfio/@G0',
      '4 0 ioctl 21 VFIO_GROUP_SET_CONTAINER 20',
      '5 0 ioctl 20 VFIO_SET_IOMMU 3',
      '6 0 ioctl 20 VFIO_IOMMU_MAP_DMA READ,WRITE 0x7f0000000000 0x0 0x200000',
      '7 0 fork 1',
      '0 1 mmap 0x7f5000000000 0x1000 anon',
      '8 1 ioctl 20 VFIO_IOMMU_MAP_DMA READ,WRITE 0x7f0000000000 0x0 0x200000',
      '9 1 ioctl 20 VFIO_IOMMU_MAP_DMA READ 0x7f5000000000 0x400000 0x1000',
      '10 1 exit',
      '11 0 exit',
    ]);
  });

  it('execs in the same helper process, with undescribed memory of the new address space set up after the exec', () => {
    const s = steps([
      v2,
      ...base,
      map(6, '0x200000'),
      { type: 'process', seq: 7, pid: 7, op: 'exec', comm: 'vmm' },
      map(8, '0x200000'),
    ]);
    expect(s.slice(6)).toEqual([
      '6 0 ioctl 20 VFIO_IOMMU_MAP_DMA READ,WRITE 0x7f0000000000 0x0 0x200000',
      '7 0 exec',
      '0 0 mmap 0x7f0000000000 0x200000 anon',
      '8 0 ioctl 20 VFIO_IOMMU_MAP_DMA READ,WRITE 0x7f0000000000 0x0 0x200000',
    ]);
  });

  it('writes dups, mlocks and mmaps with their prot and flags', () => {
    const s = steps([
      v2,
      start,
      { type: 'open', seq: 2, pid: 7, fd: 20, path: '/dev/vfio/vfio' },
      { type: 'dup', seq: 3, pid: 7, fd: 20, newfd: 30, call: 'dup2', ret: 30 },
      { type: 'dup', seq: 4, pid: 7, fd: 30, newfd: 40, call: 'fcntl', ret: 40 },
      { type: 'mmap', seq: 5, pid: 7, vaddr: '0x7f0000000000', size: '0x10000', backing: 'anon', prot: ['READ'], flags: ['PRIVATE', 'ANONYMOUS'] },
      { type: 'mmap', seq: 6, pid: 7, vaddr: '0x7f1000000000', size: '0x1000', backing: 'shared', prot: [], flags: ['SHARED', 'ANONYMOUS'] },
      { type: 'mlock', seq: 7, pid: 7, vaddr: '0x7f0000000000', size: '0x1000', flags: ['ONFAULT'] },
      { type: 'munlock', seq: 8, pid: 7, vaddr: '0x7f0000000000', size: '0x1000' },
      { type: 'mlockall', seq: 9, pid: 7, flags: ['CURRENT', 'FUTURE'] },
      { type: 'munlockall', seq: 10, pid: 7 },
      { type: 'ioctl', seq: 11, pid: 7, fd: 40, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: ['ALL'], iova: 0, size: 0 } },
    ]);
    expect(s).toEqual([
      '1 0 limit 0x100000',
      '2 0 open 20 /dev/vfio/vfio',
      '3 0 dup 20 30 dup2',
      '4 0 dup 30 40 fcntl',
      '5 0 mmap 0x7f0000000000 0x10000 anon READ PRIVATE,ANONYMOUS',
      '6 0 mmap 0x7f1000000000 0x1000 shared - SHARED,ANONYMOUS',
      '7 0 mlock 0x7f0000000000 0x1000 ONFAULT',
      '8 0 munlock 0x7f0000000000 0x1000',
      '9 0 mlockall CURRENT,FUTURE',
      '10 0 munlockall',
      '11 0 ioctl 40 VFIO_IOMMU_UNMAP_DMA ALL 0x0 0x0',
    ]);
  });

  it('opens a device with VFIO_GROUP_GET_DEVICE_FD as the trace numbered it and mmaps its BAR by region index (vfio-pci offset >> 40)', () => {
    const s = steps([
      v2,
      ...base,
      { type: 'ioctl', seq: 6, pid: 7, fd: 21, cmd: 'VFIO_GROUP_GET_DEVICE_FD', arg: '0000:01:00.0', ret: 22 },
      { type: 'mmap', seq: 7, pid: 7, vaddr: '0x7f0000000000', size: '0x20000', backing: 'pfnmap', fd: 22, offset: '0x0', prot: ['READ', 'WRITE'], flags: ['SHARED'] },
      { type: 'mmap', seq: 8, pid: 7, vaddr: '0x7f0000100000', size: '0x1000', backing: 'pfnmap', fd: 22, offset: '0x30000001000' },
      map(9, '0x20000'),
    ]);
    expect(s.slice(5)).toEqual([
      '6 0 ioctl 21 VFIO_GROUP_GET_DEVICE_FD @D0 22',
      '7 0 mmapdev 22 0 0x0 0x7f0000000000 0x20000 READ,WRITE SHARED',
      '8 0 mmapdev 22 3 0x1000 0x7f0000100000 0x1000 READ,WRITE SHARED',
      '9 0 ioctl 20 VFIO_IOMMU_MAP_DMA READ,WRITE 0x7f0000000000 0x0 0x20000',
    ]);
  });

  it('pins through the device fd of the process holding the mediated device, and needs no step for its v2 device events', () => {
    const h = { ...v2, topology: { groups: [{ id: 40, mdev_parent: '0000:00:02.0', devices: ['83b8f4f2-509f-382f-3c1e-e6bfe0fa1001'] }] } };
    const dev = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
    const r = planTrace(
      [
        h,
        start,
        { type: 'open', seq: 2, pid: 7, fd: 20, path: '/dev/vfio/vfio' },
        { type: 'open', seq: 3, pid: 7, fd: 21, path: '/dev/vfio/40' },
        { type: 'ioctl', seq: 4, pid: 7, fd: 21, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 20 } },
        { type: 'ioctl', seq: 5, pid: 7, fd: 20, cmd: 'VFIO_SET_IOMMU', arg: 'VFIO_TYPE1v2_IOMMU' },
        { type: 'ioctl', seq: 6, pid: 7, fd: 21, cmd: 'VFIO_GROUP_GET_DEVICE_FD', arg: dev, ret: 23 },
        { type: 'device', seq: 7, pid: 7, fd: 23, dev, op: 'open' },
        { type: 'process', seq: 8, pid: 9, op: 'fork', parent: 7 },
        { type: 'close', seq: 9, pid: 7, fd: 23 },
        { type: 'pin', seq: 10, dev, iova: '0x0', npage: 1, prot: ['READ'] },
        { type: 'close', seq: 11, pid: 9, fd: 23 },
        { type: 'device', seq: 12, dev, op: 'close' },
      ],
      limits,
    );
    expect(r.ok && r.plan).toMatchObject({
      pids: [7, 9],
      mdevs: [{ uuid: dev, group: 40 }],
      steps: [
        '1 0 limit 0x100000',
        '2 0 open 20 /dev/vfio/vfio',
        `3 0 open 21 /dev/vfio/@M${dev}`,
        '4 0 ioctl 21 VFIO_GROUP_SET_CONTAINER 20',
        '5 0 ioctl 20 VFIO_SET_IOMMU 3',
        `6 0 ioctl 21 VFIO_GROUP_GET_DEVICE_FD ${dev} 23`,
        '8 0 fork 1',
        '9 0 close 23',
        '10 1 pin 23 0x0 1 1',
        '11 1 close 23',
      ],
    });
  });
});
