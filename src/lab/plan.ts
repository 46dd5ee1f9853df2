/**
 * From a trace to the steps the lab's helper (lab/helper/vfio-lab.c) runs
 * in the guest, or the reason it cannot run there. Pure: no I/O.
 *
 * Physical groups of the trace are numbered in order of first use and
 * become the guest's vfio-bound e1000e devices: `@G<i>` and `@D<i>` in a
 * step are the i-th device's group number and PCI name. Mediated groups
 * become devices of the lab's test mdev driver created with the trace's
 * UUIDs: `@M<uuid>` is that device's group. The guest's init fills them in.
 */
type Json = Record<string, unknown>;

/** One trace's steps, and which guest device each of its groups needs. */
export interface LabPlan {
  traceId: string;
  pid: number;
  /** Trace group ids, in the order of the guest devices standing in for them. */
  groups: number[];
  /** Mediated devices (UUIDs) to create, with their trace group ids. */
  mdevs: { uuid: string; group: number }[];
  /** Helper input lines. */
  steps: string[];
}

export type PlanResult = { ok: true; plan: LabPlan } | { ok: false; reason: string };

/** What the lab guest can hold: its RAM bounds what a trace may pin. */
export interface LabLimits {
  guestMemBytes: bigint;
}

const EXTENSIONS: Record<string, number> = {
  VFIO_TYPE1_IOMMU: 1,
  VFIO_SPAPR_TCE_IOMMU: 2,
  VFIO_TYPE1v2_IOMMU: 3,
  VFIO_DMA_CC_IOMMU: 4,
  VFIO_EEH: 5,
  VFIO_TYPE1_NESTING_IOMMU: 6,
  VFIO_SPAPR_TCE_v2_IOMMU: 7,
  VFIO_NOIOMMU_IOMMU: 8,
  VFIO_UNMAP_ALL: 9,
  VFIO_UPDATE_VADDR: 10,
};

const big = (v: unknown): bigint => BigInt(v as string | number);
const hx = (v: bigint): string => '0x' + v.toString(16);

/** The events of one trace (header first) as parsed JSON objects. */
export function planTrace(objects: Json[], limits: LabLimits): PlanResult {
  const header = objects[0]!;
  const events = objects.slice(1);
  const refuse = (reason: string): PlanResult => ({ ok: false, reason });
  const pids = new Set(events.filter((e) => 'pid' in e).map((e) => e.pid as number));
  if (pids.size !== 1) return refuse(`the lab runs one process per trace; this trace has ${pids.size}`);
  const pid = [...pids][0]!;
  const topoGroups = ((header.topology as Json | undefined)?.groups as Json[] | undefined) ?? [];
  const mediated = new Set(topoGroups.filter((g) => 'mdev_parent' in g).map((g) => g.id as number));
  const devGroup = new Map<string, number>();
  for (const g of topoGroups) for (const d of (g.devices as string[] | undefined) ?? []) devGroup.set(d, g.id as number);

  const groups: number[] = [];
  const slot = (id: number): number => {
    let i = groups.indexOf(id);
    if (i < 0) {
      groups.push(id);
      i = groups.length - 1;
    }
    return i;
  };
  const fdGroup = new Map<number, number>();
  const steps: string[] = [];
  const described: [bigint, bigint][] = [];
  const dmaRanges: [bigint, bigint][] = [];
  let pinnedBytes = 0n;
  const devFd = new Map<string, number>();
  const closedDevs = new Set<string>();
  const mdevs: { uuid: string; group: number }[] = [];
  const mdevOf = (id: number): string => {
    let m = mdevs.find((x) => x.group === id);
    if (!m) {
      m = { uuid: (topoGroups.find((g) => g.id === id)!.devices as string[])[0]!, group: id };
      mdevs.push(m);
    }
    return m.uuid;
  };
  const pageShift = BigInt(Math.log2(Number(header.page_size ?? 4096)));
  /** Pages each mediated device holds pinned (by the trace's own pins and unpins), with counts. */
  const held = new Map<string, Map<bigint, number>>();
  const hold = (dev: string, iova: bigint, npage: number, delta: number) => {
    const pages = held.get(dev) ?? new Map<bigint, number>();
    held.set(dev, pages);
    for (let i = 0; i < npage; i++) {
      const at = iova + (BigInt(i) << pageShift);
      const n = (pages.get(at) ?? 0) + delta;
      if (n > 0) pages.set(at, n);
      else pages.delete(at);
    }
  };
  /** Ranges the backend notified each device to unmap, until the unmap itself. */
  const notified = new Map<string, [bigint, bigint][]>();

  for (const e of events) {
    const seq = e.seq as number;
    switch (e.type) {
      case 'process': {
        if (e.op === 'exit') break;
        if (e.op !== 'start' && e.op !== 'setrlimit') return refuse(`seq ${seq}: process op ${String(e.op)}`);
        const limit = e.memlock_limit === 'unlimited' || e.memlock_limit === undefined ? 'unlimited' : hx(big(e.memlock_limit));
        steps.push(`${seq} limit ${limit}${e.cap_ipc_lock === true ? ' keep' : ''}`);
        break;
      }
      case 'mmap': {
        const backing = e.backing as string;
        if (backing === 'pfnmap') return refuse(`seq ${seq}: pfnmap memory (device MMIO) cannot be made in the lab guest`);
        if (backing === 'hugetlb') return refuse(`seq ${seq}: hugetlb memory is not set up in the lab guest`);
        described.push([big(e.vaddr), big(e.vaddr) + big(e.size)]);
        steps.push(`${seq} mmap ${hx(big(e.vaddr))} ${hx(big(e.size))} ${backing}`);
        break;
      }
      case 'munmap':
        steps.push(`${seq} munmap ${hx(big(e.vaddr))} ${hx(big(e.size))}`);
        break;
      case 'open': {
        const path = e.path as string;
        const m = /^\/dev\/vfio\/(\d+)$/.exec(path);
        if (m) {
          const id = Number(m[1]);
          fdGroup.set(e.fd as number, id);
          if (mediated.has(id)) steps.push(`${seq} open ${e.fd as number} /dev/vfio/@M${mdevOf(id)}`);
          else steps.push(`${seq} open ${e.fd as number} /dev/vfio/@G${slot(id)}`);
        } else if (path === '/dev/vfio/vfio') steps.push(`${seq} open ${e.fd as number} ${path}`);
        else return refuse(`seq ${seq}: ${path} (iommufd device files are not in the lab guest)`);
        break;
      }
      case 'close':
        steps.push(`${seq} close ${e.fd as number}`);
        break;
      case 'ioctl': {
        const r = ioctlStep(e, fdGroup, slot, devGroup);
        if (typeof r !== 'string') return r;
        if (e.cmd === 'VFIO_IOMMU_UNMAP_DMA' && !((e.arg as Json).flags as string[] | undefined)?.includes('VADDR')) {
          const a = e.arg as Json;
          const all = ((a.flags as string[] | undefined) ?? []).includes('ALL');
          const s0 = all ? 0n : big(a.iova);
          const t = all ? 1n << 64n : big(a.iova) + big(a.size);
          for (const [dev, pages] of held) {
            const inside = [...pages.keys()].filter((p) => p >= s0 && p < t);
            if (inside.length === 0) continue;
            if (closedDevs.has(dev)) return refuse(`seq ${seq}: the unmap reaches ${inside.length} pages ${dev} still holds after its close; no driver would answer the notification and the kernel would retry the unmap forever`);
            return refuse(`seq ${seq}: ${dev}'s driver ignores the unmap notification for ${inside.length} pages (the kernel would BUG)`);
          }
          notified.clear();
        }
        if (e.cmd === 'VFIO_IOMMU_MAP_DMA') {
          const a = e.arg as Json;
          dmaRanges.push([big(a.vaddr), big(a.vaddr) + big(a.size)]);
          pinnedBytes += big(a.size);
        }
        steps.push(`${seq} ${r}`);
        break;
      }
      case 'device': {
        const dev = e.dev as string;
        const group = devGroup.get(dev);
        // A direct-assigned device's open and close need nothing of the helper.
        if (group === undefined || !mediated.has(group)) break;
        if (e.op === 'open') {
          const fd = [...fdGroup].find(([, g]) => g === group)?.[0];
          if (fd === undefined) return refuse(`seq ${seq}: device ${dev} opened before its group ${group}`);
          devFd.set(dev, 200 + devFd.size);
          steps.push(`${seq} devopen ${fd} ${dev} ${devFd.get(dev)!}`);
        } else {
          const fd = devFd.get(dev);
          if (fd === undefined) return refuse(`seq ${seq}: device ${dev} closed but never opened`);
          steps.push(`${seq} devclose ${fd}`);
          closedDevs.add(dev);
        }
        break;
      }
      case 'pin':
      case 'unpin': {
        const dev = e.dev as string;
        const fd = devFd.get(dev);
        if (fd === undefined) return refuse(`seq ${seq}: ${e.type} by ${dev}, which the trace has not opened`);
        const prot = ((e.prot as string[] | undefined) ?? []).reduce((p, f) => p | (f === 'READ' ? 1 : f === 'WRITE' ? 2 : 0), 0);
        const failed = e.ret !== undefined && (typeof e.ret === 'string' || (e.ret as number) < 0);
        if (!('npage' in e)) {
          // A page list (the pre-5.19 API): the helper pins it run by run and undoes all on failure.
          const iovas = (e.iovas as string[]).map(big);
          if (!failed) for (const at of iovas) hold(dev, at, 1, e.type === 'pin' ? 1 : -1);
          const list = iovas.map(hx).join(',');
          steps.push(e.type === 'pin' ? `${seq} pinlist ${fd} ${prot} ${list}` : `${seq} unpinlist ${fd} ${list}`);
          break;
        }
        const iova = big(e.iova);
        const npage = e.npage as number;
        if (!failed) hold(dev, iova, npage, e.type === 'pin' ? 1 : -1);
        // Unpins answering an unmap notification happen inside that unmap, through the driver's dma_unmap.
        if (e.type === 'unpin' && notified.get(dev)?.some(([s0, t]) => iova >= s0 && iova < t)) break;
        steps.push(e.type === 'pin' ? `${seq} pin ${fd} ${hx(iova)} ${npage} ${prot}` : `${seq} unpin ${fd} ${hx(iova)} ${npage}`);
        break;
      }
      case 'dma_unmap_notify': {
        const dev = e.dev as string;
        const list = notified.get(dev) ?? [];
        list.push([big(e.iova), big(e.iova) + big(e.size)]);
        notified.set(dev, list);
        break;
      }
      default:
        return refuse(`seq ${seq}: event type ${String(e.type)}`);
    }
  }
  if (pinnedBytes > limits.guestMemBytes) {
    return refuse(`the trace maps ${hx(pinnedBytes)} bytes, more than the guest's ${hx(limits.guestMemBytes)} of memory`);
  }
  // Memory a MAP_DMA uses that no mmap describes is anonymous (TRACE-FORMAT): map it first.
  const pre = uncovered(dmaRanges, described).map(([s, t]) => `0 mmap ${hx(s)} ${hx(t - s)} anon`);
  return { ok: true, plan: { traceId: header.trace_id as string, pid, groups, mdevs, steps: [...pre, ...steps] } };
}

function ioctlStep(e: Json, fdGroup: Map<number, number>, slot: (id: number) => number, devGroup: Map<string, number>): string | PlanResult {
  const fd = e.fd as number;
  const cmd = e.cmd as string;
  const a = e.arg;
  const head = `ioctl ${fd} ${cmd}`;
  switch (cmd) {
    case 'VFIO_GET_API_VERSION':
    case 'VFIO_GROUP_GET_STATUS':
    case 'VFIO_GROUP_UNSET_CONTAINER':
    case 'VFIO_IOMMU_GET_INFO':
      return head;
    case 'VFIO_CHECK_EXTENSION':
    case 'VFIO_SET_IOMMU':
      return `${head} ${EXTENSIONS[a as string] ?? 0}`;
    case 'VFIO_GROUP_SET_CONTAINER':
      return `${head} ${(a as Json).container_fd as number}`;
    case 'VFIO_GROUP_GET_DEVICE_FD': {
      const group = devGroup.get(a as string) ?? fdGroup.get(fd);
      if (group === undefined) return { ok: false, reason: `seq ${e.seq as number}: device ${String(a)} is in no known group` };
      return `${head} @D${slot(group)} ${typeof e.ret === 'number' && e.ret >= 0 ? e.ret : ''}`.trimEnd();
    }
    case 'VFIO_IOMMU_MAP_DMA': {
      const m = a as Json;
      return `${head} ${((m.flags as string[]) ?? []).join(',') || '-'} ${hx(big(m.vaddr))} ${hx(big(m.iova))} ${hx(big(m.size))}`;
    }
    case 'VFIO_IOMMU_UNMAP_DMA': {
      const u = a as Json;
      const flags = (u.flags as string[]) ?? [];
      if (flags.includes('GET_DIRTY_BITMAP')) return { ok: false, reason: `seq ${e.seq as number}: UNMAP_DMA with GET_DIRTY_BITMAP needs a user bitmap the trace does not carry` };
      return `${head} ${flags.join(',') || '-'} ${hx(big(u.iova))} ${hx(big(u.size))}`;
    }
    default:
      return { ok: false, reason: `seq ${e.seq as number}: ${cmd} is not run by the lab helper` };
  }
}

/** Parts of `ranges` not inside any of `covered`, merged. */
function uncovered(ranges: [bigint, bigint][], covered: [bigint, bigint][]): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  for (const [s0, t] of [...ranges].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
    let s = s0;
    for (const [cs, ct] of [...covered].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
      if (ct <= s || cs >= t) continue;
      if (cs > s) out.push([s, cs]);
      s = ct > s ? ct : s;
    }
    if (s < t) out.push([s, t]);
  }
  const merged: [bigint, bigint][] = [];
  for (const r of out.sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = r[1] > last[1] ? r[1] : last[1];
    else merged.push([r[0], r[1]]);
  }
  return merged;
}
