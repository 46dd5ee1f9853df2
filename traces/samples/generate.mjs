// Writes the sample traces of traces/samples/ (run: node traces/samples/generate.mjs).
// Each sample's expected results per backend are asserted in test/samples.test.ts.
import { writeFileSync } from 'node:fs';
const out = new URL('./', import.meta.url).pathname;
const hx = (v) => '0x' + BigInt(v).toString(16);
function write(name, header, events) {
  let seq = 0;
  const lines = [JSON.stringify({ type: 'header', format: 'vfio-trace', version: 1, ...header })];
  for (const e of events) lines.push(JSON.stringify({ type: e.type, seq: ++seq, ...e }));
  writeFileSync(out + name, lines.join('\n') + '\n');
}
const topo = {
  iommus: [{ id: 'dmar0', pgsize_bitmap: '0x40201000', cache_coherent: true, aperture: ['0x0', '0xffffffffffff'], reserved: [{ start: '0xfee00000', end: '0xfeefffff', type: 'msi' }] }],
  groups: [{ id: 12, iommu: 'dmar0', devices: ['0000:01:00.0'] }],
};
const pid = 4242;
const RAM = 0x7f1000000000n, ROM = 0x7f2000000000n, BIOS = 0x7f2100000000n;
const ioctl = (fd, cmd, arg, extra = {}) => ({ type: 'ioctl', pid, fd, cmd, ...(arg === undefined ? {} : { arg }), ...extra });
const map = (iova, size, vaddr, flags, extra = {}) => ioctl(20, 'VFIO_IOMMU_MAP_DMA', { flags, vaddr: hx(vaddr), iova: hx(iova), size: hx(size) }, extra);
const unmap = (iova, size, extra = {}) => ioctl(20, 'VFIO_IOMMU_UNMAP_DMA', { flags: [], iova: hx(iova), size: hx(size) }, { ret: 0, out: { size: hx(size) }, ...extra });
const RW = ['READ', 'WRITE'];
// A 4 GiB q35 guest: 2 GiB below the PCI hole, 2 GiB above 4 GiB, the VGA
// hole at 0xa0000, an option ROM and the BIOS mapped read-only.
const ramMaps = [
  [0x0n, 0xa0000n, RAM, RW],
  [0xc0000n, 0x40000n, ROM, ['READ']],
  [0x100000n, 0x7ff00000n, RAM + 0x100000n, RW],
  [0x100000000n, 0x80000000n, RAM + 0x80000000n, RW],
  [0xfffc0000n, 0x40000n, BIOS, ['READ']],
];
let pages = 0;
const boot = [
  { type: 'process', pid, op: 'start', memlock_limit: hx(5n << 30n), cap_ipc_lock: false, comm: 'qemu-system-x86' },
  { type: 'mmap', pid, vaddr: hx(RAM), size: hx(4n << 30n), backing: 'anon' },
  { type: 'mmap', pid, vaddr: hx(ROM), size: hx(0x40000n), backing: 'shared', pfn: '0x812000' },
  { type: 'mmap', pid, vaddr: hx(BIOS), size: hx(0x40000n), backing: 'shared', pfn: '0x813000' },
  { type: 'open', pid, fd: 20, path: '/dev/vfio/vfio', ret: 20 },
  ioctl(20, 'VFIO_GET_API_VERSION', undefined, { ret: 0 }),
  ioctl(20, 'VFIO_CHECK_EXTENSION', 'VFIO_TYPE1v2_IOMMU', { ret: 1 }),
  { type: 'open', pid, fd: 21, path: '/dev/vfio/12', ret: 21 },
  ioctl(21, 'VFIO_GROUP_GET_STATUS', undefined, { ret: 0, out: { flags: ['VIABLE'] } }),
  ioctl(21, 'VFIO_GROUP_SET_CONTAINER', { container_fd: 20 }, { ret: 0 }),
  ioctl(20, 'VFIO_SET_IOMMU', 'VFIO_TYPE1v2_IOMMU', { ret: 0 }),
  ioctl(20, 'VFIO_IOMMU_GET_INFO', undefined, { ret: 0, out: { iova_pgsizes: '0x40201000', iova_ranges: [['0x0', '0xfedfffff'], ['0xfef00000', '0xffffffffffff']], dma_avail: 65535 } }),
  ioctl(21, 'VFIO_GROUP_GET_DEVICE_FD', '0000:01:00.0', { ret: 22 }),
  { type: 'device', dev: '0000:01:00.0', op: 'open' },
];
for (const [iova, size, va, flags] of ramMaps) {
  pages += Number(size / 4096n);
  boot.push(map(iova, size, va, flags, { ret: 0, locked_vm: pages }));
}
boot.push(ioctl(20, 'VFIO_IOMMU_GET_INFO', undefined, { ret: 0, out: { dma_avail: 65530 } }));
// Teardown: QEMU unmaps as the memory listener goes, then closes.
for (const [iova, size] of ramMaps) {
  pages -= Number(size / 4096n);
  boot.push(unmap(iova, size, { locked_vm: pages }));
}
boot.push({ type: 'device', dev: '0000:01:00.0', op: 'close' });

boot.push({ type: 'close', pid, fd: 21, ret: 0 });
boot.push({ type: 'close', pid, fd: 20, ret: 0 });
boot.push({ type: 'process', pid, op: 'exit' });
write('vm-boot.jsonl', { trace_id: 'host42/vm-boot', segment: 0, host: 'host42', kernel: '6.1.0-27-amd64', arch: 'x86_64', page_size: 4096, captured_by: 'hand-written sample', topology: topo }, boot);

// memlock never raised: 64 MiB (the RHEL default) and a 2 GiB pc.ram map.
const over = [
  { type: 'process', pid, op: 'start', memlock_limit: hx(64n << 20n), cap_ipc_lock: false, comm: 'qemu-system-x86' },
  { type: 'open', pid, fd: 20, path: '/dev/vfio/vfio' },
  { type: 'open', pid, fd: 21, path: '/dev/vfio/12' },
  ioctl(21, 'VFIO_GROUP_SET_CONTAINER', { container_fd: 20 }, { ret: 0 }),
  ioctl(20, 'VFIO_SET_IOMMU', 'VFIO_TYPE1v2_IOMMU', { ret: 0 }),
  map(0x0n, 0xa0000n, RAM, RW, { ret: 0, locked_vm: 160 }),
  map(0x100000n, 0x7ff00000n, RAM + 0x100000n, RW, { ret: 'ENOMEM', locked_vm: 160 }),
  { type: 'close', pid, fd: 21 },
  { type: 'close', pid, fd: 20 },
  { type: 'process', pid, op: 'exit' },
];
write('limit-overrun.jsonl', { trace_id: 'host42/vm-memlock', page_size: 4096, kernel: '6.1.0-27-amd64', topology: topo }, over);

// A vGPU whose vendor driver never unpins: the container is released with
// 16 pages pinned, and they stay charged.
const mtopo = { groups: [{ id: 40, mdev_parent: '0000:00:02.0', devices: ['83b8f4f2-509f-382f-3c1e-e6bfe0fa1001'] }] };
const dev = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
const leak = [
  { type: 'process', pid, op: 'start', memlock_limit: hx(1n << 30n), cap_ipc_lock: false, comm: 'qemu-system-x86' },
  { type: 'open', pid, fd: 20, path: '/dev/vfio/vfio' },
  { type: 'open', pid, fd: 21, path: '/dev/vfio/40' },
  ioctl(21, 'VFIO_GROUP_SET_CONTAINER', { container_fd: 20 }, { ret: 0 }),
  ioctl(20, 'VFIO_SET_IOMMU', 'VFIO_TYPE1v2_IOMMU', { ret: 0 }),
  map(0x0n, 1n << 30n, RAM, RW, { ret: 0, locked_vm: 0 }),
  { type: 'device', dev, op: 'open' },
  { type: 'pin', dev, iova: '0x100000', npage: 16, prot: RW, ret: 16, locked_vm: 16 },
  { type: 'pin', dev, iova: '0x100000', npage: 4, prot: ['READ'], ret: 4, locked_vm: 16 },
  { type: 'unpin', dev, iova: '0x100000', npage: 4 },
  { type: 'device', dev, op: 'close' },
  { type: 'close', pid, fd: 21 },
  { type: 'close', pid, fd: 20, locked_vm: 16 },
];
write('leak.jsonl', { trace_id: 'host42/vgpu-leak', page_size: 4096, kernel: '6.1.0-27-amd64', topology: mtopo }, leak);

// Bad input: line 5 has a seq that goes backwards.
const bad = [
  JSON.stringify({ type: 'header', format: 'vfio-trace', version: 1, trace_id: 'host42/bad' }),
  JSON.stringify({ type: 'process', seq: 1, pid, op: 'start', memlock_limit: 'unlimited' }),
  JSON.stringify({ type: 'open', seq: 2, pid, fd: 20, path: '/dev/vfio/vfio' }),
  JSON.stringify({ type: 'open', seq: 3, pid, fd: 21, path: '/dev/vfio/12' }),
  JSON.stringify({ type: 'ioctl', seq: 3, pid, fd: 21, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 20 } }),
];
writeFileSync(out + 'invalid-seq.jsonl', bad.join('\n') + '\n');

// The review's case: one container with a direct-assigned GPU (group 12) and
// a vGPU (group 40) whose vendor driver pins guest pages the GPU's mapping
// already charged, one page twice.
const mixedTopo = {
  iommus: topo.iommus,
  groups: [topo.groups[0], { id: 40, mdev_parent: '0000:00:02.0', devices: [dev] }],
};
const mixed = [
  { type: 'process', pid, op: 'start', memlock_limit: hx(2n << 30n), cap_ipc_lock: false, comm: 'qemu-system-x86' },
  { type: 'open', pid, fd: 20, path: '/dev/vfio/vfio' },
  { type: 'open', pid, fd: 21, path: '/dev/vfio/12' },
  ioctl(21, 'VFIO_GROUP_SET_CONTAINER', { container_fd: 20 }, { ret: 0 }),
  { type: 'open', pid, fd: 22, path: '/dev/vfio/40' },
  ioctl(22, 'VFIO_GROUP_SET_CONTAINER', { container_fd: 20 }, { ret: 0 }),
  ioctl(20, 'VFIO_SET_IOMMU', 'VFIO_TYPE1v2_IOMMU', { ret: 0 }),
  map(0x0n, 1n << 30n, RAM, RW, { ret: 0, locked_vm: 262144 }),
  { type: 'device', dev, op: 'open' },
  { type: 'pin', dev, iova: '0x100000', npage: 512, prot: RW, ret: 512, locked_vm: 262144 },
  { type: 'pin', dev, iovas: ['0x100000', '0x101000', '0x102000', '0x103000'], prot: ['READ'], ret: 4, locked_vm: 262144 },
  { type: 'unpin', dev, iovas: ['0x100000', '0x101000', '0x102000', '0x103000'], locked_vm: 262144 },
  { type: 'unpin', dev, iova: '0x100000', npage: 512, locked_vm: 262144 },
  { type: 'device', dev, op: 'close' },
  unmap(0x0n, 1n << 30n, { locked_vm: 0 }),
  { type: 'close', pid, fd: 22 },
  { type: 'close', pid, fd: 21 },
  { type: 'close', pid, fd: 20 },
  { type: 'process', pid, op: 'exit' },
];
write('mixed-direct-mdev.jsonl', { trace_id: 'host42/vgpu-mixed', page_size: 4096, kernel: '6.1.0-27-amd64', topology: mixedTopo }, mixed);

// A vGPU in a mediated-only container pinning and unpinning guest pages as
// its graphics page tables move: 24 rounds of 64 pages, each window
// overlapping the last by half, each unpinned two rounds later.
const churnTopo = { groups: [{ id: 40, mdev_parent: '0000:00:02.0', devices: [dev] }] };
const churn = [
  { type: 'process', pid, op: 'start', memlock_limit: hx(1n << 30n), cap_ipc_lock: false, comm: 'qemu-system-x86' },
  { type: 'open', pid, fd: 20, path: '/dev/vfio/vfio' },
  { type: 'open', pid, fd: 21, path: '/dev/vfio/40' },
  ioctl(21, 'VFIO_GROUP_SET_CONTAINER', { container_fd: 20 }, { ret: 0 }),
  ioctl(20, 'VFIO_SET_IOMMU', 'VFIO_TYPE1v2_IOMMU', { ret: 0 }),
  map(0x0n, 2n << 30n, RAM, RW, { ret: 0, locked_vm: 0 }),
  { type: 'device', dev, op: 'open' },
];
const windowAt = (i) => hx(0x10000000n + BigInt((i % 8) * 32) * 4096n);
for (let i = 0; i < 24; i++) {
  churn.push({ type: 'pin', dev, iova: windowAt(i), npage: 64, prot: RW, ret: 64 });
  if (i >= 2) churn.push({ type: 'unpin', dev, iova: windowAt(i - 2), npage: 64 });
}
churn.push({ type: 'unpin', dev, iova: windowAt(22), npage: 64 });
churn.push({ type: 'unpin', dev, iova: windowAt(23), npage: 64, locked_vm: 0 });
churn.push({ type: 'device', dev, op: 'close' });
churn.push({ type: 'close', pid, fd: 21 });
churn.push({ type: 'close', pid, fd: 20 });
write('vgpu-churn.jsonl', { trace_id: 'host42/vgpu-churn', page_size: 4096, kernel: '6.1.0-27-amd64', topology: churnTopo }, churn);

// vIOMMU style: one container per device, each mapping all 1 GiB of guest
// RAM from the same process memory: the frames are charged twice.
const vtopo = { iommus: topo.iommus, groups: [topo.groups[0], { id: 13, iommu: 'dmar0', devices: ['0000:02:00.0'] }] };
const viommu = [
  { type: 'process', pid, op: 'start', memlock_limit: hx(3n << 30n), cap_ipc_lock: false, comm: 'qemu-system-x86' },
];
for (const [cfd, gfd, group] of [[20, 21, 12], [30, 31, 13]]) {
  viommu.push({ type: 'open', pid, fd: cfd, path: '/dev/vfio/vfio' });
  viommu.push({ type: 'open', pid, fd: gfd, path: `/dev/vfio/${group}` });
  viommu.push({ type: 'ioctl', pid, fd: gfd, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: cfd }, ret: 0 });
  viommu.push({ type: 'ioctl', pid, fd: cfd, cmd: 'VFIO_SET_IOMMU', arg: 'VFIO_TYPE1v2_IOMMU', ret: 0 });
  viommu.push({ type: 'ioctl', pid, fd: cfd, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: RW, vaddr: hx(RAM), iova: '0x0', size: hx(1n << 30n) }, ret: 0 });
}
viommu.push({ type: 'process', pid, op: 'exit' });
write('viommu-two-containers.jsonl', { trace_id: 'host42/viommu', page_size: 4096, kernel: '6.1.0-27-amd64', topology: vtopo }, viommu);

// A vendor driver that ignores the unmap notification (libvfio-user#23):
// the notification is sent, no unpin follows, the unmap goes on.
const ignored = [
  { type: 'process', pid, op: 'start', memlock_limit: hx(1n << 30n), cap_ipc_lock: false, comm: 'qemu-system-x86' },
  { type: 'open', pid, fd: 20, path: '/dev/vfio/vfio' },
  { type: 'open', pid, fd: 21, path: '/dev/vfio/40' },
  ioctl(21, 'VFIO_GROUP_SET_CONTAINER', { container_fd: 20 }, { ret: 0 }),
  ioctl(20, 'VFIO_SET_IOMMU', 'VFIO_TYPE1v2_IOMMU', { ret: 0 }),
  map(0x0n, 1n << 30n, RAM, RW, { ret: 0 }),
  { type: 'device', dev, op: 'open' },
  { type: 'pin', dev, iova: '0x200000', npage: 8, prot: RW, ret: 8 },
  { type: 'dma_unmap_notify', dev, iova: '0x0', size: hx(1n << 30n) },
  ioctl(20, 'VFIO_IOMMU_UNMAP_DMA', { flags: [], iova: '0x0', size: hx(1n << 30n) }),
  { type: 'device', dev, op: 'close' },
  { type: 'close', pid, fd: 21 },
  { type: 'close', pid, fd: 20 },
];
write('ignored-unmap-notify.jsonl', { trace_id: 'host42/ignored-notify', page_size: 4096, kernel: '6.1.0-27-amd64', topology: churnTopo }, ignored);

// A vendor driver that unpins pages it never pinned, and pins an IOVA no
// mapping covers.
const stray = [
  { type: 'process', pid, op: 'start', memlock_limit: hx(1n << 30n), cap_ipc_lock: false, comm: 'qemu-system-x86' },
  { type: 'open', pid, fd: 20, path: '/dev/vfio/vfio' },
  { type: 'open', pid, fd: 21, path: '/dev/vfio/40' },
  ioctl(21, 'VFIO_GROUP_SET_CONTAINER', { container_fd: 20 }, { ret: 0 }),
  ioctl(20, 'VFIO_SET_IOMMU', 'VFIO_TYPE1v2_IOMMU', { ret: 0 }),
  map(0x0n, 1n << 30n, RAM, RW, { ret: 0 }),
  { type: 'device', dev, op: 'open' },
  { type: 'pin', dev, iova: '0x400000', npage: 4, prot: RW, ret: 4, locked_vm: 4 },
  { type: 'unpin', dev, iova: '0x500000', npage: 2, locked_vm: 4 },
  { type: 'pin', dev, iova: hx(1n << 30n), npage: 1, prot: RW },
  { type: 'unpin', dev, iova: '0x400000', npage: 4, locked_vm: 0 },
  { type: 'device', dev, op: 'close' },
  { type: 'close', pid, fd: 21 },
  { type: 'close', pid, fd: 20 },
];
write('unpin-unpinned.jsonl', { trace_id: 'host42/unpin-unpinned', page_size: 4096, kernel: '6.1.0-27-amd64', topology: churnTopo }, stray);
