/**
 * From a trace to the steps the lab's helper (lab/helper/vfio-lab.c) runs
 * in the guest, or the reason it cannot run there. Pure: no I/O.
 *
 * A step is `SEQ PROC OP ARGS...`: PROC is the helper process that runs it
 * (0 for the trace's first pid, then each `process fork` child in trace
 * order, see plan-processes.ts); the helper runs the steps one at a time in
 * trace order, whichever process they belong to.
 *
 * Physical groups of the trace are numbered in order of first use and
 * become the guest's vfio-bound e1000e devices: `@G<i>` and `@D<i>` in a
 * step are the i-th device's group number and PCI name. Mediated groups
 * become devices of the lab's test mdev driver created with the trace's
 * UUIDs: `@M<uuid>` is that device's group. The guest's init fills them in.
 */
import { LabProcesses, type LabProcess, type OpenFile } from './plan-processes.js';

type Json = Record<string, unknown>;

/** One trace's steps, and which guest device each of its groups needs. */
export interface LabPlan {
  traceId: string;
  /** The trace's pids by helper process index: the first process, then its forks' children. */
  pids: number[];
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

/**
 * vfio-pci's file offsets of a device fd: region index << 40 plus the
 * offset inside the region (VFIO_PCI_OFFSET_SHIFT, vfio_pci_core.h). The
 * helper asks the guest's device for the region's real offset
 * (VFIO_DEVICE_GET_REGION_INFO).
 */
const VFIO_PCI_OFFSET_SHIFT = 40n;

/** The helper's own descriptors (its channels to the workers) start here: CHANNEL_FD in vfio-lab.c. */
const HELPER_FDS = 900;
/** How many processes the helper runs at most: MAXPROC in vfio-lab.c. */
const HELPER_PROCS = 32;

const big = (v: unknown): bigint => BigInt(v as string | number);
const hx = (v: bigint): string => '0x' + v.toString(16);
/** A list field as one helper argument: `READ,WRITE`, `-` for none. */
const list = (v: unknown): string => ((v as string[] | undefined) ?? []).join(',') || '-';
const failed = (e: Json): boolean => e.ret !== undefined && (typeof e.ret === 'string' || (e.ret as number) < 0);

type Range = [bigint, bigint];

/**
 * One address space of a helper process (a process has a new one after each
 * exec): described ranges and the ranges it DMA-maps.
 */
interface Memory {
  proc: number;
  described: Range[];
  dma: Range[];
  /** For a fork's child: its parent's address space, and how many of its described ranges it inherited. */
  parent?: { memory: Memory; described: number };
  /** Where its own setup steps go: after the fork or exec step that made it (-1: first of all). */
  at: number;
}

/** The events of one trace (header first) as parsed JSON objects. */
export function planTrace(objects: Json[], limits: LabLimits): PlanResult {
  const header = objects[0]!;
  const events = objects.slice(1);
  const refuse = (reason: string): PlanResult => ({ ok: false, reason });
  const firstPid = events.find((e) => 'pid' in e)?.pid as number | undefined;
  if (firstPid === undefined) return refuse('no event names a process (pid)');
  const procs = new LabProcesses();
  /** Every address space in order of creation, and each process's current one. */
  const memory: Memory[] = [{ proc: 0, described: [], dma: [], at: -1 }];
  const space = new Map<number, Memory>([[0, memory[0]!]]);
  procs.first(firstPid);

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
  const steps: string[] = [];
  let pinnedBytes = 0n;
  /** Devices opened by a `device` event (a v1 trace): the helper's fd for each. */
  const devFd = new Map<string, { proc: LabProcess; fd: number }>();
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
  /** A device whose open file is no longer referenced is closed (the kernel's last fput). */
  const released = (file: OpenFile | undefined) => {
    if (file?.kind === 'device' && !procs.referenced(file)) closedDevs.add(file.dev);
  };
  /** The device a pin or `device` event names: through the fd that holds it (v2) or the helper's own (v1). */
  const deviceFd = (dev: string) => procs.deviceHolder(dev) ?? devFd.get(dev);

  for (const e of events) {
    const seq = e.seq as number;
    let proc = procs.list[0]!;
    if ('pid' in e && !(e.type === 'process' && e.op === 'fork')) {
      const p = procs.get(e.pid as number);
      if (!p) return refuse(`seq ${seq}: pid ${e.pid as number} is neither the trace's first process (${firstPid}) nor a child it forked; the lab runs one process and its forks`);
      if (p.exited) return refuse(`seq ${seq}: pid ${p.pid} has exited`);
      proc = p;
    }
    const step = (s: string) => steps.push(`${seq} ${proc.index} ${s}`);
    const made = newFd(e);
    if (made !== undefined && made >= HELPER_FDS) return refuse(`seq ${seq}: fd ${made} is among the lab helper's own descriptors (${HELPER_FDS} and up)`);
    switch (e.type) {
      case 'process': {
        if (e.op === 'exit') {
          step('exit');
          proc.exited = true;
          for (const f of proc.fds.values()) released(f);
          break;
        }
        if (e.op === 'fork') {
          const parent = procs.get(e.parent as number);
          if (!parent || parent.exited) return refuse(`seq ${seq}: pid ${e.pid as number} forked by pid ${e.parent as number}, which is not a live process of the trace`);
          if (procs.get(e.pid as number)) return refuse(`seq ${seq}: pid ${e.pid as number} forked while it already runs`);
          if (procs.list.length === HELPER_PROCS) return refuse(`seq ${seq}: more than ${HELPER_PROCS} processes, the lab helper's most`);
          const child = procs.fork(parent, e.pid as number);
          proc = parent;
          step(`fork ${child.index}`);
          const from = space.get(parent.index)!;
          const m: Memory = { proc: child.index, described: [], dma: [], parent: { memory: from, described: from.described.length }, at: steps.length };
          memory.push(m);
          space.set(child.index, m);
          break;
        }
        if (e.op === 'exec') {
          // A new address space: what the old one described (and its mlocks) is gone; fds stay.
          step('exec');
          const m: Memory = { proc: proc.index, described: [], dma: [], at: steps.length };
          memory.push(m);
          space.set(proc.index, m);
          break;
        }
        if (e.op !== 'start' && e.op !== 'setrlimit') return refuse(`seq ${seq}: process op ${String(e.op)} is not run by the lab helper`);
        const limit = e.memlock_limit === 'unlimited' || e.memlock_limit === undefined ? 'unlimited' : hx(big(e.memlock_limit));
        step(`limit ${limit}${e.cap_ipc_lock === true ? ' keep' : ''}`);
        break;
      }
      case 'mmap': {
        const r = mmapStep(e, proc);
        if (typeof r !== 'string') return r;
        space.get(proc.index)!.described.push([big(e.vaddr), big(e.vaddr) + big(e.size)]);
        step(r);
        break;
      }
      case 'munmap':
        step(`munmap ${hx(big(e.vaddr))} ${hx(big(e.size))}`);
        break;
      case 'mlock':
        step(`mlock ${hx(big(e.vaddr))} ${hx(big(e.size))} ${list(e.flags)}`);
        break;
      case 'munlock':
        step(`munlock ${hx(big(e.vaddr))} ${hx(big(e.size))}`);
        break;
      case 'mlockall':
        step(`mlockall ${list(e.flags)}`);
        break;
      case 'munlockall':
        step('munlockall');
        break;
      case 'open': {
        const path = e.path as string;
        const m = /^\/dev\/vfio\/(\d+)$/.exec(path);
        const fd = e.fd as number;
        released(proc.fds.get(fd));
        if (m) {
          const id = Number(m[1]);
          proc.fds.set(fd, { kind: 'group', group: id });
          if (mediated.has(id)) step(`open ${fd} /dev/vfio/@M${mdevOf(id)}`);
          else step(`open ${fd} /dev/vfio/@G${slot(id)}`);
        } else if (path === '/dev/vfio/vfio') {
          proc.fds.set(fd, { kind: 'container' });
          step(`open ${fd} ${path}`);
        } else return refuse(`seq ${seq}: ${path} (iommufd device files are not in the lab guest)`);
        break;
      }
      case 'close': {
        const fd = e.fd as number;
        step(`close ${fd}`);
        const f = proc.fds.get(fd);
        proc.fds.delete(fd);
        released(f);
        break;
      }
      case 'dup': {
        const fd = e.fd as number;
        const newfd = e.newfd as number;
        step(`dup ${fd} ${newfd} ${e.call as string}`);
        const f = proc.fds.get(fd);
        if (failed(e) || !f) break;
        // do_dup2: an open newfd is closed first (filp_close), then refers to fd's file.
        const old = proc.fds.get(newfd);
        proc.fds.set(newfd, f);
        released(old);
        break;
      }
      case 'ioctl': {
        const r = ioctlStep(e, proc, slot, devGroup, mediated, mdevOf);
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
          space.get(proc.index)!.dma.push([big(a.vaddr), big(a.vaddr) + big(a.size)]);
          pinnedBytes += big(a.size);
        }
        step(r);
        break;
      }
      case 'device': {
        const dev = e.dev as string;
        const group = devGroup.get(dev);
        // A direct-assigned device's open and close need nothing of the helper.
        if (group === undefined || !mediated.has(group)) break;
        // A v2 trace opens the device with VFIO_GROUP_GET_DEVICE_FD and releases it on its fd's last close:
        // the `device` event says what those did and needs no step of its own.
        if (e.op === 'open') {
          if (procs.deviceHolder(dev)) break;
          const g = procs.groupFd(group);
          if (!g) return refuse(`seq ${seq}: device ${dev} opened before its group ${group}`);
          const fd = 200 + devFd.size;
          devFd.set(dev, { proc: g.proc, fd });
          proc = g.proc;
          step(`devopen ${g.fd} ${dev} ${fd}`);
        } else {
          const h = devFd.get(dev);
          if (h === undefined) {
            if (procs.deviceHolder(dev) || closedDevs.has(dev)) break;
            return refuse(`seq ${seq}: device ${dev} closed but never opened`);
          }
          proc = h.proc;
          step(`devclose ${h.fd}`);
          devFd.delete(dev);
          closedDevs.add(dev);
        }
        break;
      }
      case 'pin':
      case 'unpin': {
        const dev = e.dev as string;
        const h = deviceFd(dev);
        if (h === undefined) return refuse(`seq ${seq}: ${e.type} by ${dev}, which the trace has not opened`);
        // The vendor driver pins through the device, in the process that holds it open.
        proc = h.proc;
        const prot = ((e.prot as string[] | undefined) ?? []).reduce((p, f) => p | (f === 'READ' ? 1 : f === 'WRITE' ? 2 : 0), 0);
        if (!('npage' in e)) {
          // A page list (the pre-5.19 API): the helper pins it run by run and undoes all on failure.
          const iovas = (e.iovas as string[]).map(big);
          if (!failed(e)) for (const at of iovas) hold(dev, at, 1, e.type === 'pin' ? 1 : -1);
          const l = iovas.map(hx).join(',');
          step(e.type === 'pin' ? `pinlist ${h.fd} ${prot} ${l}` : `unpinlist ${h.fd} ${l}`);
          break;
        }
        const iova = big(e.iova);
        const npage = e.npage as number;
        if (!failed(e)) hold(dev, iova, npage, e.type === 'pin' ? 1 : -1);
        // Unpins answering an unmap notification happen inside that unmap, through the driver's dma_unmap.
        if (e.type === 'unpin' && notified.get(dev)?.some(([s0, t]) => iova >= s0 && iova < t)) break;
        step(e.type === 'pin' ? `pin ${h.fd} ${hx(iova)} ${npage} ${prot}` : `unpin ${h.fd} ${hx(iova)} ${npage}`);
        break;
      }
      case 'dma_unmap_notify': {
        const dev = e.dev as string;
        const l = notified.get(dev) ?? [];
        l.push([big(e.iova), big(e.iova) + big(e.size)]);
        notified.set(dev, l);
        break;
      }
      default:
        return refuse(`seq ${seq}: event type ${String(e.type)}`);
    }
  }
  if (pinnedBytes > limits.guestMemBytes) {
    return refuse(`the trace maps ${hx(pinnedBytes)} bytes, more than the guest's ${hx(limits.guestMemBytes)} of memory`);
  }
  return {
    ok: true,
    plan: { traceId: header.trace_id as string, pids: procs.list.map((p) => p.pid), groups, mdevs, steps: withSetup(steps, memory) },
  };
}

/** The descriptor an event makes (open, dup, VFIO_GROUP_GET_DEVICE_FD), if any. */
function newFd(e: Json): number | undefined {
  const fd = e.type === 'open' ? e.fd : e.type === 'dup' ? e.newfd : e.type === 'ioctl' && e.cmd === 'VFIO_GROUP_GET_DEVICE_FD' ? e.ret : undefined;
  return typeof fd === 'number' ? fd : undefined;
}

/**
 * Memory a MAP_DMA uses that no mmap describes is anonymous (TRACE-FORMAT):
 * each address space maps it first (seq 0), the first process's before
 * everything, a fork's child's or an exec's just after that step. A child
 * has what its parent had described or set up by then.
 */
function withSetup(steps: string[], memory: Memory[]): string[] {
  const setup = new Map<Memory, Range[]>();
  for (const m of memory) {
    const inherited = m.parent ? [...m.parent.memory.described.slice(0, m.parent.described), ...setup.get(m.parent.memory)!] : [];
    setup.set(m, uncovered(m.dma, [...inherited, ...m.described]));
  }
  const out: string[] = [];
  const emit = (at: number) => {
    for (const m of memory) if (m.at === at) out.push(...setup.get(m)!.map(([s, t]) => `0 ${m.proc} mmap ${hx(s)} ${hx(t - s)} anon`));
  };
  emit(-1);
  steps.forEach((s, k) => {
    out.push(s);
    emit(k + 1);
  });
  return out;
}

/** An mmap event as a helper step: anonymous, shared or file memory, or a device region (a BAR). */
function mmapStep(e: Json, proc: LabProcess): string | PlanResult {
  const seq = e.seq as number;
  const backing = e.backing as string;
  const where = `${hx(big(e.vaddr))} ${hx(big(e.size))}`;
  const how = 'prot' in e || 'flags' in e ? ` ${list(e.prot)} ${list(e.flags)}` : '';
  const file = e.fd === undefined ? undefined : proc.fds.get(e.fd as number);
  if (backing === 'pfnmap') {
    if (file?.kind !== 'device') return { ok: false, reason: `seq ${seq}: pfnmap memory (device MMIO) cannot be made in the lab guest but by an mmap of a VFIO device fd` };
    const offset = big(e.offset ?? 0);
    const region = offset >> VFIO_PCI_OFFSET_SHIFT;
    const inside = offset & ((1n << VFIO_PCI_OFFSET_SHIFT) - 1n);
    return `mmapdev ${e.fd as number} ${region} ${hx(inside)} ${where}${how || ' READ,WRITE SHARED'}`;
  }
  if (backing === 'hugetlb') return { ok: false, reason: `seq ${seq}: hugetlb memory is not set up in the lab guest` };
  if (file !== undefined) return { ok: false, reason: `seq ${seq}: an mmap of a VFIO ${file.kind} fd as ${backing} memory` };
  return `mmap ${where} ${backing}${how}`;
}

function ioctlStep(
  e: Json,
  proc: LabProcess,
  slot: (id: number) => number,
  devGroup: Map<string, number>,
  mediated: Set<number>,
  mdevOf: (id: number) => string,
): string | PlanResult {
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
      const file = proc.fds.get(fd);
      const group = devGroup.get(a as string) ?? (file?.kind === 'group' ? file.group : undefined);
      if (group === undefined) return { ok: false, reason: `seq ${e.seq as number}: device ${String(a)} is in no known group` };
      // A mediated device keeps its trace UUID in the guest; a physical one is the guest's e1000e standing in.
      const name = mediated.has(group) ? mdevOf(group) : `@D${slot(group)}`;
      const newfd = typeof e.ret === 'number' && e.ret >= 0 ? e.ret : undefined;
      if (newfd !== undefined) {
        proc.fds.set(newfd, { kind: 'device', dev: a as string, group });
        return `${head} ${name} ${newfd}`;
      }
      return `${head} ${name}`;
    }
    case 'VFIO_IOMMU_MAP_DMA': {
      const m = a as Json;
      return `${head} ${list(m.flags)} ${hx(big(m.vaddr))} ${hx(big(m.iova))} ${hx(big(m.size))}`;
    }
    case 'VFIO_IOMMU_UNMAP_DMA': {
      const u = a as Json;
      const flags = (u.flags as string[]) ?? [];
      if (flags.includes('GET_DIRTY_BITMAP')) return { ok: false, reason: `seq ${e.seq as number}: UNMAP_DMA with GET_DIRTY_BITMAP needs a user bitmap the trace does not carry` };
      return `${head} ${list(flags)} ${hx(big(u.iova))} ${hx(big(u.size))}`;
    }
    default:
      return { ok: false, reason: `seq ${e.seq as number}: ${cmd} is not run by the lab helper` };
  }
}

/** Parts of `ranges` not inside any of `covered`, merged. */
function uncovered(ranges: Range[], covered: Range[]): Range[] {
  const out: Range[] = [];
  for (const [s0, t] of [...ranges].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
    let s = s0;
    for (const [cs, ct] of [...covered].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
      if (ct <= s || cs >= t) continue;
      if (cs > s) out.push([s, cs]);
      s = ct > s ? ct : s;
    }
    if (s < t) out.push([s, t]);
  }
  const merged: Range[] = [];
  for (const r of out.sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = r[1] > last[1] ? r[1] : last[1];
    else merged.push([r[0], r[1]]);
  }
  return merged;
}
