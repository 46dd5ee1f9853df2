/**
 * Realistic workloads for tests and benchmarks, deterministic for a seed
 * and streamed, so millions of events and terabytes mapped cost no memory:
 * - vm-boot: a QEMU guest's memory map (RAM around the PCI hole, NUMA
 *   nodes, ROMs, memory hot-plug) into one container of direct-assigned
 *   devices, then teardown;
 * - vgpu-churn: a vendor driver pinning and unpinning guest pages in a
 *   mediated-only container;
 * - viommu: one container per device, each mapping the same RAM, then the
 *   guest's DMA map/unmap churn through its vIOMMU;
 * - mixed: direct and mediated groups in one container.
 */
import { Random } from './random.js';
import { TraceBuilder, hx } from './builder.js';
import type { LineSink } from './writer.js';

export interface GenOptions {
  seed: number;
  traceId: string;
  /** Guest RAM in bytes. */
  ram: bigint;
  /** Events to produce (churn workloads; vm-boot is as long as its map needs). */
  events: number;
  /** vm-boot: NUMA nodes, each its own RAM mapping. */
  numa: number;
  /** vm-boot: memory hot-plug DIMMs added after boot. */
  hotplug: number;
  /** Direct-assigned devices (groups), or containers for viommu. */
  devices: number;
  /** vgpu-churn / mixed: pages per pin call. */
  batch: number;
  /** vgpu-churn / mixed: pages the vendor driver keeps pinned at most. */
  workingSet: number;
  /** RLIMIT_MEMLOCK for the VMM, or unlimited. */
  memlock: bigint | 'unlimited';
}

export const WORKLOADS = ['vm-boot', 'vgpu-churn', 'viommu', 'mixed'] as const;
export type Workload = (typeof WORKLOADS)[number];

const PID = 4242;
const RAM_VA = 0x7f0000000000n;
const GiB = 1n << 30n;
const PAGE = 4096n;
const MDEV = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

/** q35: RAM below 4 GiB ends at 2 GiB (the PCI hole), the rest goes above 4 GiB. */
function ramLayout(ram: bigint, numa: number): { iova: bigint; size: bigint; vaddr: bigint }[] {
  const out: { iova: bigint; size: bigint; vaddr: bigint }[] = [];
  const low = ram < 2n * GiB ? ram : 2n * GiB;
  out.push({ iova: 0n, size: 0xa0000n, vaddr: RAM_VA });
  if (low > 0x100000n) out.push({ iova: 0x100000n, size: low - 0x100000n, vaddr: RAM_VA + 0x100000n });
  let high = ram - low;
  const nodes = BigInt(Math.max(1, numa));
  const per = ((high / nodes) / (2n << 20n)) * (2n << 20n);
  let iova = 4n * GiB;
  let va = RAM_VA + low;
  for (let n = 0n; n < nodes && high > 0n; n++) {
    const size = n === nodes - 1n ? high : per;
    out.push({ iova, size, vaddr: va });
    iova += size;
    va += size;
    high -= size;
  }
  return out;
}

function header(o: GenOptions, workload: Workload, groups: Record<string, unknown>[]): Record<string, unknown> {
  return {
    trace_id: o.traceId,
    segment: 0,
    kernel: '6.1.0-27-amd64',
    page_size: 4096,
    captured_by: `pinledger gen ${workload} --seed ${o.seed}`,
    topology: {
      iommus: [{ id: 'dmar0', pgsize_bitmap: '0x40201000', cache_coherent: true, aperture: ['0x0', '0xffffffffffff'], reserved: [{ start: '0xfee00000', end: '0xfeefffff', type: 'msi' }] }],
      groups,
    },
  };
}

const physGroups = (n: number) => Array.from({ length: n }, (_, i) => ({ id: 12 + i, iommu: 'dmar0', devices: [`0000:${(i + 1).toString(16).padStart(2, '0')}:00.0`] }));

async function start(b: TraceBuilder, o: GenOptions): Promise<void> {
  await b.event({ type: 'process', pid: PID, op: 'start', memlock_limit: o.memlock === 'unlimited' ? 'unlimited' : hx(o.memlock), cap_ipc_lock: false, comm: 'qemu-system-x86' });
  await b.event({ type: 'mmap', pid: PID, vaddr: hx(RAM_VA), size: hx(o.ram + BigInt(o.hotplug) * GiB), backing: 'anon' });
}

/** One boot and teardown per VM, VMs one after another until `events` (at least one). */
async function vmBoot(b: TraceBuilder, o: GenOptions): Promise<void> {
  await b.header(header(o, 'vm-boot', physGroups(o.devices)));
  do await bootOnce(b, o);
  while (b.events < o.events);
}

async function bootOnce(b: TraceBuilder, o: GenOptions): Promise<void> {
  await start(b, o);
  await b.event({ type: 'mmap', pid: PID, vaddr: hx(0x7e0000000000n), size: '0x40000', backing: 'shared', pfn: '0x812000' });
  await b.container(PID, 20, physGroups(o.devices).map((g) => g.id));
  const maps = ramLayout(o.ram, o.numa);
  // The VGA BIOS and the firmware, read-only.
  const roms = [
    { iova: 0xc0000n, size: 0x20000n, vaddr: 0x7e0000000000n },
    { iova: 0xfffc0000n, size: 0x40000n, vaddr: 0x7e0000020000n },
  ];
  for (const m of maps) await b.map(PID, 20, m.iova, m.size, m.vaddr);
  for (const r of roms) await b.map(PID, 20, r.iova, r.size, r.vaddr, ['READ']);
  // Hot-plugged DIMMs land above the guest's RAM.
  const top = maps.reduce((t, m) => (m.iova + m.size > t ? m.iova + m.size : t), 4n * GiB);
  for (let i = 0n; i < BigInt(o.hotplug); i++) await b.map(PID, 20, top + i * GiB, GiB, RAM_VA + o.ram + i * GiB);
  for (const m of [...maps, ...roms]) await b.unmap(PID, 20, m.iova, m.size);
  for (let i = 0n; i < BigInt(o.hotplug); i++) await b.unmap(PID, 20, top + i * GiB, GiB);
  for (let i = 0; i <= o.devices; i++) await b.event({ type: 'close', pid: PID, fd: 20 + i });
  await b.event({ type: 'process', pid: PID, op: 'exit' });
}

/** The vendor driver's churn: pin batches of guest pages, unpin the oldest beyond the working set. */
async function pinChurn(b: TraceBuilder, o: GenOptions, rnd: Random, until: number, within: { iova: bigint; size: bigint }): Promise<void> {
  const pages = Number(within.size / PAGE);
  const live: bigint[] = [];
  let held = 0;
  while (b.events < until) {
    const first = BigInt(rnd.int(Math.max(1, pages - o.batch)));
    const iova = within.iova + first * PAGE;
    await b.event({ type: 'pin', dev: MDEV, iova: hx(iova), npage: o.batch, prot: ['READ', 'WRITE'] });
    live.push(iova);
    held += o.batch;
    while (held > o.workingSet && live.length > 0 && b.events < until) {
      const old = live.shift()!;
      await b.event({ type: 'unpin', dev: MDEV, iova: hx(old), npage: o.batch });
      held -= o.batch;
    }
  }
  while (live.length > 0) await b.event({ type: 'unpin', dev: MDEV, iova: hx(live.shift()!), npage: o.batch });
}

async function vgpuChurn(b: TraceBuilder, o: GenOptions, rnd: Random): Promise<void> {
  await b.header(header(o, 'vgpu-churn', [{ id: 40, mdev_parent: '0000:00:02.0', devices: [MDEV] }]));
  await start(b, o);
  await b.container(PID, 20, [40]);
  await b.map(PID, 20, 0n, o.ram, RAM_VA);
  await b.event({ type: 'device', dev: MDEV, op: 'open' });
  await pinChurn(b, o, rnd, o.events, { iova: 0n, size: o.ram });
  await b.event({ type: 'device', dev: MDEV, op: 'close' });
  await b.unmap(PID, 20, 0n, o.ram);
  await b.event({ type: 'process', pid: PID, op: 'exit' });
}

async function mixed(b: TraceBuilder, o: GenOptions, rnd: Random): Promise<void> {
  const groups = [...physGroups(Math.max(1, o.devices)), { id: 40, mdev_parent: '0000:00:02.0', devices: [MDEV] }];
  await b.header(header(o, 'mixed', groups));
  await start(b, o);
  await b.container(PID, 20, groups.map((g) => g.id));
  const maps = ramLayout(o.ram, 1);
  for (const m of maps) await b.map(PID, 20, m.iova, m.size, m.vaddr);
  await b.event({ type: 'device', dev: MDEV, op: 'open' });
  // The vGPU pins guest pages below the PCI hole, which the GPU's mapping already charged.
  await pinChurn(b, o, rnd, o.events, maps[1] ?? maps[0]!);
  await b.event({ type: 'device', dev: MDEV, op: 'close' });
  for (const m of maps) await b.unmap(PID, 20, m.iova, m.size);
  await b.event({ type: 'process', pid: PID, op: 'exit' });
}

/** One container per device mapping all RAM, then 4 KiB–2 MiB guest DMA mappings made and torn down. */
async function viommu(b: TraceBuilder, o: GenOptions, rnd: Random): Promise<void> {
  const groups = physGroups(Math.max(1, o.devices));
  await b.header(header(o, 'viommu', groups));
  await start(b, o);
  const fds = groups.map((_, i) => 20 + i * 2);
  for (let i = 0; i < groups.length; i++) await b.container(PID, fds[i]!, [groups[i]!.id]);
  const maps = ramLayout(o.ram, 1);
  for (const fd of fds) for (const m of maps) await b.map(PID, fd, m.iova, m.size, m.vaddr);
  // The guest's own DMA mappings, in an IOVA window above RAM.
  const base = 1n << 40n;
  const slots = 4096;
  const live = new Map<number, { fd: number; iova: bigint; size: bigint }>();
  while (b.events < o.events) {
    const slot = rnd.int(slots);
    const had = live.get(slot);
    if (had) {
      await b.unmap(PID, had.fd, had.iova, had.size);
      live.delete(slot);
      continue;
    }
    const fd = fds[rnd.int(fds.length)]!;
    const size = PAGE << BigInt(rnd.int(10));
    const iova = base + BigInt(slot) * (2n << 20n);
    const vaddr = RAM_VA + (BigInt(rnd.int(Number(o.ram / (2n << 20n)))) << 21n);
    await b.map(PID, fd, iova, size, vaddr);
    live.set(slot, { fd, iova, size });
  }
  for (const m of live.values()) await b.unmap(PID, m.fd, m.iova, m.size);
  await b.event({ type: 'process', pid: PID, op: 'exit' });
}

export async function generate(workload: Workload, o: GenOptions, sink: LineSink): Promise<number> {
  const b = new TraceBuilder(sink);
  const rnd = new Random(o.seed);
  switch (workload) {
    case 'vm-boot':
      await vmBoot(b, o);
      break;
    case 'vgpu-churn':
      await vgpuChurn(b, o, rnd);
      break;
    case 'viommu':
      await viommu(b, o, rnd);
      break;
    case 'mixed':
      await mixed(b, o, rnd);
      break;
  }
  await sink.close();
  return b.events;
}
