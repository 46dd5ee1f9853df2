/** What the lab refuses before booting, and the steps it writes: no QEMU needed. */
import { describe, expect, it } from 'vitest';
import { planTrace } from '../../src/lab/plan.js';

const header = { type: 'header', format: 'vfio-trace', version: 1, trace_id: 't' };
const limits = { guestMemBytes: 1n << 30n };
const start = { type: 'process', seq: 1, pid: 7, op: 'start', memlock_limit: '0x100000', cap_ipc_lock: false };
const base = [
  start,
  { type: 'open', seq: 2, pid: 7, fd: 20, path: '/dev/vfio/vfio' },
  { type: 'open', seq: 3, pid: 7, fd: 21, path: '/dev/vfio/12' },
  { type: 'ioctl', seq: 4, pid: 7, fd: 21, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 20 } },
  { type: 'ioctl', seq: 5, pid: 7, fd: 20, cmd: 'VFIO_SET_IOMMU', arg: 'VFIO_TYPE1v2_IOMMU' },
];
const map = (seq: number, size: string) => ({ type: 'ioctl', seq, pid: 7, fd: 20, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: ['READ', 'WRITE'], vaddr: '0x7f0000000000', iova: '0x0', size } });

describe('lab plan', () => {
  it('writes the helper steps, mapping undescribed memory first and groups to guest devices', () => {
    const r = planTrace([header, ...base, map(6, '0x200000')], limits);
    expect(r).toEqual({
      ok: true,
      plan: {
        traceId: 't',
        pid: 7,
        groups: [12],
        mdevs: [],
        steps: [
          '0 mmap 0x7f0000000000 0x200000 anon',
          '1 limit 0x100000',
          '2 open 20 /dev/vfio/vfio',
          '3 open 21 /dev/vfio/@G0',
          '4 ioctl 21 VFIO_GROUP_SET_CONTAINER 20',
          '5 ioctl 20 VFIO_SET_IOMMU 3',
          '6 ioctl 20 VFIO_IOMMU_MAP_DMA READ,WRITE 0x7f0000000000 0x0 0x200000',
        ],
      },
    });
  });

  it('refuses pfnmap memory, more memory than the guest has, and more than one process', () => {
    expect(planTrace([header, ...base, { type: 'mmap', seq: 6, pid: 7, vaddr: '0x1000', size: '0x1000', backing: 'pfnmap' }], limits)).toEqual({
      ok: false,
      reason: 'seq 6: pfnmap memory (device MMIO) cannot be made in the lab guest',
    });
    expect(planTrace([header, ...base, map(6, '0x80000000')], limits)).toEqual({ ok: false, reason: 'the trace maps 0x80000000 bytes, more than the guest\'s 0x40000000 of memory' });
    expect(planTrace([header, ...base, { ...start, seq: 6, pid: 8 }], limits)).toEqual({ ok: false, reason: 'the lab runs one process per trace; this trace has 2' });
  });
});
