import { describe, expect, it } from 'vitest';
import { Errno } from '../../src/model/errno.js';
import { MiB, codes, lockedVm, retOf, setup, type Ev } from '../helpers.js';
import { close, dup, exit, fork, getDeviceFd, mapFd, pin, run2, unmapFd } from './v2.js';

const VA = 0x7f0000000000n;
/** 1 MiB: 256 pages. */
const SZ = MiB;
const topology = {
  groups: [
    { id: 12, devices: ['0000:01:00.0'] },
    { id: 40, mdev_parent: '0000:00:02.0', devices: ['mdev-a'] },
  ],
};
const T = { topology };
const status = (fd: number, pid = 100): Ev => ({ type: 'ioctl', pid, fd, cmd: 'VFIO_GROUP_GET_STATUS' });

describe('dup, dup2, dup3 and fcntl(F_DUPFD) refer to the same open file', () => {
  it('maps and unmaps through dup2 copies after the originals are closed (seq 12 charges 256 pages, seq 13 uncharges them)', () => {
    const r = run2([...setup(), dup(20, 30, 'dup2'), dup(21, 31, 'dup2'), close(20), close(21), status(31), mapFd(30, 0n, SZ, VA), unmapFd(30, 0n, SZ)], T);
    // seq: 1 start, 2-3 open, 4 set container, 5 set iommu, 6-7 dup2, 8-9 close, 10 status, 11 map, 12 unmap
    expect([retOf(r, 6), retOf(r, 7), retOf(r, 8), retOf(r, 9), retOf(r, 10), retOf(r, 11), retOf(r, 12)]).toEqual([30, 31, 0, 0, 0, 0, 0]);
    expect(r.outcomes[9]!.out).toEqual({ flags: ['VIABLE', 'CONTAINER_SET'] });
    expect(codes(r)).toEqual([]);
    expect(r.vfio!.containers.size).toBe(1);
  });

  it('charges a map through a dup copy like one through the original: 256 pages', () => {
    const r = run2([...setup(), dup(20, 32, 'dup'), dup(20, 40, 'fcntl'), mapFd(32, 0n, SZ, VA)], T);
    expect([retOf(r, 6), retOf(r, 7), retOf(r, 8)]).toEqual([32, 40, 0]);
    expect(lockedVm(r)).toBe(256);
  });

  it('dup2 onto an open group fd closes it first (do_dup2 -> filp_close): the last group leaves and the mapping is uncharged', () => {
    const r = run2([...setup(), mapFd(20, 0n, SZ, VA), dup(20, 21, 'dup2'), status(21)], T);
    expect(retOf(r, 7)).toBe(21);
    expect(lockedVm(r)).toBe(0);
    // fd 21 is now the container, whose backend went with its last group: -EINVAL.
    expect(retOf(r, 8)).toBe(-Errno.EINVAL);
    expect(r.vfio!.groups.get(12)!.fileOpen).toBe(false);
    expect(codes(r)).toEqual([]);
  });

  it('dup2 of an fd onto itself returns it and changes nothing; dup3 refuses it with EINVAL; a closed fd is EBADF', () => {
    const r = run2([...setup(), dup(20, 20, 'dup2'), dup(20, 20, 'dup3'), dup(55, 56, 'dup2'), mapFd(20, 0n, SZ, VA)], T);
    expect([retOf(r, 6), retOf(r, 7), retOf(r, 8), retOf(r, 9)]).toEqual([20, -Errno.EINVAL, -Errno.EBADF, 0]);
    expect(lockedVm(r)).toBe(256);
  });

  it('releases a container only at its last close: groups detached, the container gone', () => {
    const r = run2([...setup(), mapFd(20, 0n, SZ, VA), dup(20, 30, 'dup'), dup(21, 31, 'dup'), close(20), close(21)], T);
    expect(lockedVm(r)).toBe(256);
    expect([...r.vfio!.containers][0]!.fdOpen).toBe(true);
    const r2 = run2([...setup(), mapFd(20, 0n, SZ, VA), dup(20, 30, 'dup'), dup(21, 31, 'dup'), close(20), close(21), close(31), close(30)], T);
    expect(lockedVm(r2)).toBe(0);
    expect(r2.vfio!.containers.size).toBe(0);
  });

  it('reports dup returning an fd the model has open, and closes the earlier file', () => {
    const r = run2([...setup(), dup(20, 21, 'dup')], T);
    expect(codes(r)).toEqual(['TRACE_INCONSISTENT']);
    expect(r.vfio!.groups.get(12)!.fileOpen).toBe(false);
  });
});

describe('fork: the child shares the parent open files, and its maps are charged to it', () => {
  const child = 101;

  it('charges the child 256 pages for a map through the inherited container fd, the parent keeps its 512', () => {
    const r = run2([...setup(), mapFd(20, 0n, 2n * SZ, VA), fork(child), mapFd(20, 0x1000000n, SZ, VA + 0x1000000n, child)], T);
    expect(retOf(r, 8)).toBe(0);
    expect([lockedVm(r, 100), lockedVm(r, child)]).toEqual([512, 256]);
    // The same container: one container, two mappings.
    expect(r.vfio!.containers.size).toBe(1);
    expect(r.vfio!.backends()[0]!.snapshot().dmas.map((d) => [d.pid, Number(d.size >> 12n)])).toEqual([
      [100, 512],
      [child, 256],
    ]);
  });

  it("uncharges the parent when the child unmaps the parent's mapping (the charge follows the mapping's task)", () => {
    const r = run2([...setup(), mapFd(20, 0n, 2n * SZ, VA), fork(child), unmapFd(20, 0n, 2n * SZ, child)], T);
    expect(r.outcomes[7]!.out).toEqual({ size: '0x200000' });
    expect([lockedVm(r, 100), lockedVm(r, child)]).toEqual([0, 0]);
  });

  it('keeps the container when the child exits; a later unmap of the child mapping uncharges nothing (its mm is gone), no leak, no underflow', () => {
    const r = run2(
      [...setup(), fork(child), mapFd(20, 0n, SZ, VA, child), close(20, child), close(21, child), exit(child), mapFd(20, 0x1000000n, SZ, VA), { type: 'ioctl', pid: 100, fd: 20, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: ['ALL'], iova: 0, size: 0 } }],
      T,
    );
    expect(retOf(r, 11)).toBe(0);
    expect(r.outcomes[11]!.out).toEqual({ size: '0x200000' });
    expect(lockedVm(r, 100)).toBe(0);
    expect(codes(r)).toEqual([]);
    expect(r.accounting().get(child)!.peakLockedVm).toBe(256);
  });

  it('refuses a vendor driver pin into a mapping whose task exited with ENODEV (get_task_mm finds no mm)', () => {
    const r = run2(
      [...setup({ groups: [40] }), getDeviceFd(21, 'mdev-a', 22), fork(child), mapFd(20, 0n, SZ, VA, child), exit(child), pin('mdev-a', 0n, 1), mapFd(20, SZ, SZ, VA + SZ), pin('mdev-a', SZ, 1)],
      T,
    );
    expect([retOf(r, 10), retOf(r, 12)]).toEqual([-Errno.ENODEV, 1]);
    expect(lockedVm(r)).toBe(1);
  });

  it('copies RLIMIT_MEMLOCK and CAP_IPC_LOCK: the child is refused past the parent limit (256 pages)', () => {
    const r = run2([...setup({ limit: SZ }), fork(child), mapFd(20, 0n, SZ, VA, child), mapFd(20, SZ, 4096n, VA + SZ, child)], T);
    expect([retOf(r, 7), retOf(r, 8)]).toEqual([0, -Errno.ENOMEM]);
    expect(lockedVm(r, child)).toBe(256);
    const c = run2([...setup({ limit: 0n, cap: true }), fork(child), mapFd(20, 0n, SZ, VA, child)], T);
    expect(retOf(c, 7)).toBe(0);
    expect(lockedVm(c, child)).toBe(256);
  });

  it('releases the container only when parent and child have both closed it (exit closes what a process holds)', () => {
    const r = run2([...setup(), mapFd(20, 0n, SZ, VA), fork(child), exit(100)], T);
    expect(r.vfio!.containers.size).toBe(1);
    expect(codes(r)).toEqual([]);
    const r2 = run2([...setup(), mapFd(20, 0n, SZ, VA), fork(child), exit(100), mapFd(20, SZ, SZ, VA + SZ, child), exit(child)], T);
    expect(retOf(r2, 9)).toBe(0);
    expect(r2.vfio!.containers.size).toBe(0);
    expect(r2.accounting().get(child)!.peakLockedVm).toBe(256);
    expect(codes(r2)).toEqual([]);
  });
});

describe('exec: a new address space, the fds kept', () => {
  it('starts a new mm: the mlocked pages (64) and the DMA charge (256) go with the old one, without a warning', () => {
    const r = run2(
      [
        ...setup(),
        mapFd(20, 0n, SZ, VA),
        { type: 'mlock', pid: 100, vaddr: '0x7f1000000000', size: '0x40000' },
        { type: 'process', op: 'exec', pid: 100, comm: 'qemu-new' },
        status(21),
      ],
      T,
    );
    expect(lockedVm(r)).toBe(0);
    expect(retOf(r, 9)).toBe(0);
    expect(codes(r)).toEqual([]);
    expect(r.modelEnv!.processes.get(100)!.comm).toBe('qemu-new');
  });

  it('forgets the described mappings: a BAR mmapped before exec is taken as anonymous memory after it (charged)', () => {
    const bar = { type: 'mmap', pid: 100, vaddr: '0x7f5000000000', size: '0x20000', backing: 'pfnmap', prot: ['READ', 'WRITE'], flags: ['SHARED'] };
    const before = run2([...setup(), bar, mapFd(20, 0n, 0x20000n, 0x7f5000000000n)], T);
    expect(lockedVm(before)).toBe(0);
    const after = run2([...setup(), bar, { type: 'process', op: 'exec', pid: 100 }, mapFd(20, 0n, 0x20000n, 0x7f5000000000n)], T);
    expect(lockedVm(after)).toBe(32);
  });
});

describe('VFIO_GROUP_GET_DEVICE_FD opens the device; its last close releases it', () => {
  const mdev = (extra: Ev[]) => run2([...setup({ groups: [40] }), mapFd(20, 0n, SZ, VA), getDeviceFd(21, 'mdev-a', 22), ...extra], T);

  it('lets the vendor driver pin (4 pages charged in a mediated-only container) once the device fd is open', () => {
    const r = mdev([pin('mdev-a', 0n, 4)]);
    expect([retOf(r, 7), retOf(r, 8)]).toEqual([22, 4]);
    expect(lockedVm(r)).toBe(4);
    expect(codes(r)).toEqual([]);
  });

  it('refuses pins after the device fd is closed (EINVAL), and reports the pins it left (PIN_LEAK)', () => {
    const r = mdev([pin('mdev-a', 0n, 4), close(22), pin('mdev-a', 0x4000n, 1)]);
    expect([retOf(r, 9), retOf(r, 10)]).toEqual([0, -Errno.EINVAL]);
    expect(codes(r)).toEqual(['PIN_LEAK']);
  });

  it('keeps the device open while a dup of its fd remains, then releases it at the last close', () => {
    const r = mdev([dup(22, 23, 'dup'), close(22), pin('mdev-a', 0n, 1), close(23), pin('mdev-a', 0x1000n, 1)]);
    expect([retOf(r, 10), retOf(r, 12)]).toEqual([1, -Errno.EINVAL]);
  });

  it('keeps the group busy: UNSET_CONTAINER is EBUSY while the device fd is open', () => {
    const r = mdev([{ type: 'ioctl', pid: 100, fd: 21, cmd: 'VFIO_GROUP_UNSET_CONTAINER' }, close(22), { type: 'ioctl', pid: 100, fd: 21, cmd: 'VFIO_GROUP_UNSET_CONTAINER' }]);
    expect([retOf(r, 8), retOf(r, 10)]).toEqual([-Errno.EBUSY, 0]);
  });

  it('returns EINVAL before SET_IOMMU and ENODEV for a device not in the group', () => {
    const r = run2(
      [
        { type: 'process', pid: 100, op: 'start' },
        { type: 'open', pid: 100, fd: 20, path: '/dev/vfio/vfio' },
        { type: 'open', pid: 100, fd: 21, path: '/dev/vfio/12' },
        { type: 'ioctl', pid: 100, fd: 21, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 20 } },
        { type: 'ioctl', pid: 100, fd: 21, cmd: 'VFIO_GROUP_GET_DEVICE_FD', arg: '0000:01:00.0' },
        { type: 'ioctl', pid: 100, fd: 20, cmd: 'VFIO_SET_IOMMU', arg: 'VFIO_TYPE1v2_IOMMU' },
        { type: 'ioctl', pid: 100, fd: 21, cmd: 'VFIO_GROUP_GET_DEVICE_FD', arg: 'mdev-a' },
        { type: 'ioctl', pid: 100, fd: 21, cmd: 'VFIO_GROUP_GET_DEVICE_FD', arg: '0000:01:00.0' },
      ],
      T,
    );
    // Without an observed ret the fd is the lowest the model has free.
    expect([retOf(r, 5), retOf(r, 7), retOf(r, 8)]).toEqual([-Errno.EINVAL, -Errno.ENODEV, 0]);
  });

  it('treats a device event of a device its file holds as the same open: nothing changes', () => {
    const r = mdev([{ type: 'device', dev: 'mdev-a', op: 'open', pid: 100, fd: 22 }, { type: 'device', dev: 'mdev-a', op: 'close', pid: 100, fd: 22 }, pin('mdev-a', 0n, 2)]);
    expect([retOf(r, 8), retOf(r, 9), retOf(r, 10)]).toEqual([0, 0, 2]);
  });

  it('closes the device fd at exit: the device released with its pins reported, then the container, whose pinned pages stay charged (as measured on 6.1)', () => {
    const r = mdev([pin('mdev-a', 0n, 2), exit()]);
    expect(codes(r)).toEqual(['PIN_LEAK', 'ACCT_LEAK']);
    expect(r.findings[1]!.details).toMatchObject({ pid: 100, pages: 2 });
    expect(r.vfio!.containers.size).toBe(0);
  });

  it('matches the observed fd: a trace whose ret is the fd has no RET_MISMATCH', () => {
    const r = mdev([]);
    expect(codes(r)).toEqual([]);
    expect(retOf(r, 7)).toBe(22);
  });
});

describe('attached processes', () => {
  it('reports one warning per attached pid, at the first event', () => {
    const r = run2([...setup()], { ...T, attached: [{ pid: 100, comm: 'qemu-system-x86' }, { pid: 200 }] });
    expect(r.findings.map((f) => [f.seq, f.code, f.severity, f.details.pid])).toEqual([
      [1, 'TRACE_ATTACHED', 'warning', 100],
      [1, 'TRACE_ATTACHED', 'warning', 200],
    ]);
    expect(r.findings[0]!.message).toMatch(/^The capture attached to pid 100 \(qemu-system-x86\) while it ran: what it mapped, pinned, locked or opened before is not in the trace/);
  });
});
