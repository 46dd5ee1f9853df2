/**
 * Schema-valid JSON objects to model events and headers: 64-bit fields to
 * exact bigints, errno names to numbers, defaults applied.
 */
import { errnoFromName } from '../model/errno.js';
import {
  DEFAULT_MODULE_PARAMS,
  type GroupSpec,
  type IoctlCall,
  type IommuUnitSpec,
  type MmapFlag,
  type MmapProt,
  type Observed,
  type PageList,
  type TraceEvent,
  type TraceHeader,
} from '../model/events.js';
import { type Pages, bytes, iova, pages, pfn, vaddr } from '../model/units.js';
import { DEFAULT_IOMMU_ID, defaultIommuUnit as defaultIommu } from '../model/iommu/default-unit.js';
import { FieldError } from './trace-error.js';
import { parseU64 } from './u64.js';
import { unknownType } from './validate.js';

type Json = Record<string, unknown>;

function convertIommu(j: Json, field: string): IommuUnitSpec {
  const d = defaultIommu();
  const ap = j.aperture as unknown[] | undefined;
  const aperture = ap
    ? { start: iova(parseU64(ap[0], `${field}.aperture.0`)), end: iova(parseU64(ap[1], `${field}.aperture.1`)) }
    : d.aperture;
  if (aperture.start > aperture.end) {
    throw new FieldError(`${field}.aperture`, 'start is above end');
  }
  const reserved = j.reserved
    ? (j.reserved as Json[]).map((r, i) => {
        const start = iova(parseU64(r.start, `${field}.reserved.${i}.start`));
        const end = iova(parseU64(r.end, `${field}.reserved.${i}.end`));
        if (start > end) throw new FieldError(`${field}.reserved.${i}`, 'start is above end');
        return { start, end, type: typeof r.type === 'string' ? r.type : 'reserved' };
      })
    : d.reserved;
  const bitmap = j.pgsize_bitmap === undefined ? d.pgsizeBitmap : parseU64(j.pgsize_bitmap, `${field}.pgsize_bitmap`);
  if (bitmap === 0n) throw new FieldError(`${field}.pgsize_bitmap`, 'expected at least one page size');
  return {
    id: j.id as string,
    pgsizeBitmap: bitmap,
    cacheCoherent: (j.cache_coherent as boolean | undefined) ?? true,
    interruptRemapping: (j.interrupt_remapping as boolean | undefined) ?? true,
    aperture,
    reserved,
  };
}

function convertGroup(j: Json): GroupSpec {
  const devices = (j.devices as string[] | undefined) ?? [];
  const id = j.id as number;
  if (typeof j.mdev_parent === 'string') return { kind: 'mdev', id, mdevParent: j.mdev_parent, devices };
  return { kind: 'iommu', id, iommu: (j.iommu as string | undefined) ?? DEFAULT_IOMMU_ID, devices };
}

export function convertHeader(j: Json): TraceHeader {
  const mp = (j.module_params as Json | undefined) ?? {};
  const header: TraceHeader = {
    version: j.version === 2 ? 2 : 1,
    traceId: j.trace_id as string,
    segment: (j.segment as number | undefined) ?? 0,
    pageSize: (j.page_size as number | undefined) ?? 4096,
    arch: (j.arch as string | undefined) ?? 'x86_64',
    moduleParams: {
      dmaEntryLimit: (mp.dma_entry_limit as number | undefined) ?? DEFAULT_MODULE_PARAMS.dmaEntryLimit,
      allowUnsafeInterrupts:
        (mp.allow_unsafe_interrupts as boolean | undefined) ?? DEFAULT_MODULE_PARAMS.allowUnsafeInterrupts,
      disableHugepages: (mp.disable_hugepages as boolean | undefined) ?? DEFAULT_MODULE_PARAMS.disableHugepages,
    },
  };
  if (typeof j.kernel === 'string') header.kernel = j.kernel;
  if (typeof j.host === 'string') header.host = j.host;
  if (Array.isArray(j.attached)) {
    if (header.version === 1) throw new FieldError('attached', 'is a version 2 field: the header says "version": 1');
    header.attached = (j.attached as Json[]).map((a) => (typeof a.comm === 'string' ? { pid: a.pid as number, comm: a.comm } : { pid: a.pid as number }));
  }
  if (j.guest_memory !== undefined) header.guestMemory = bytes(parseU64(j.guest_memory, 'guest_memory'));
  const topo = j.topology as Json | undefined;
  if (topo) {
    const iommus = ((topo.iommus as Json[] | undefined) ?? []).map((u, i) => convertIommu(u, `topology.iommus.${i}`));
    const ids = new Set<string>();
    iommus.forEach((u, i) => {
      if (ids.has(u.id)) throw new FieldError(`topology.iommus.${i}.id`, `duplicate IOMMU id ${JSON.stringify(u.id)}`);
      ids.add(u.id);
    });
    const groups = ((topo.groups as Json[] | undefined) ?? []).map(convertGroup);
    const gids = new Set<number>();
    groups.forEach((g, i) => {
      if (gids.has(g.id)) throw new FieldError(`topology.groups.${i}.id`, `duplicate group id ${g.id}`);
      gids.add(g.id);
      if (g.kind === 'iommu' && g.iommu !== DEFAULT_IOMMU_ID && !ids.has(g.iommu)) {
        throw new FieldError(`topology.groups.${i}.iommu`, `names IOMMU ${JSON.stringify(g.iommu)}, which topology.iommus does not list`);
      }
    });
    header.topology = { iommus, groups };
  }
  return header;
}

function convertRet(v: unknown): number {
  if (typeof v === 'number') return v;
  const n = errnoFromName(v as string);
  if (n === undefined) throw new FieldError('ret', `unknown errno name ${JSON.stringify(v)}`);
  return -n;
}

function convertObserved(j: Json): Observed {
  const o: Observed = {};
  if (j.ret !== undefined) o.ret = convertRet(j.ret);
  if (j.out !== undefined) o.out = j.out as Record<string, unknown>;
  if (j.locked_vm !== undefined) {
    const v = parseU64(j.locked_vm, 'locked_vm');
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FieldError('locked_vm', 'is beyond any possible page count');
    o.lockedVm = pages(Number(v));
  }
  return o;
}

function convertPages(j: Json): PageList {
  if (j.iovas !== undefined) {
    return { kind: 'list', iovas: (j.iovas as unknown[]).map((v, i) => iova(parseU64(v, `iovas.${i}`))) };
  }
  return { kind: 'run', iova: iova(parseU64(j.iova, 'iova')), npage: j.npage as number };
}

function convertIoctl(j: Json, version: 1 | 2): IoctlCall {
  const cmd = j.cmd as string;
  const arg = j.arg as Json | string | undefined;
  switch (cmd) {
    case 'VFIO_GET_API_VERSION':
    case 'VFIO_GROUP_GET_STATUS':
    case 'VFIO_GROUP_UNSET_CONTAINER':
    case 'VFIO_IOMMU_GET_INFO':
      return { cmd };
    case 'VFIO_CHECK_EXTENSION':
      return { cmd, extension: arg as string };
    case 'VFIO_SET_IOMMU':
      return { cmd, iommuType: arg as string };
    case 'VFIO_GROUP_SET_CONTAINER':
      return { cmd, containerFd: (arg as Json).container_fd as number };
    case 'VFIO_IOMMU_MAP_DMA': {
      const a = arg as Json;
      const call: IoctlCall = {
        cmd,
        flags: a.flags as string[],
        vaddr: vaddr(parseU64(a.vaddr, 'arg.vaddr')),
        iova: iova(parseU64(a.iova, 'arg.iova')),
        size: bytes(parseU64(a.size, 'arg.size')),
      };
      if (typeof a.argsz === 'number') call.argsz = a.argsz;
      return call;
    }
    case 'VFIO_IOMMU_UNMAP_DMA': {
      const a = arg as Json;
      const call: IoctlCall = {
        cmd,
        flags: (a.flags as string[] | undefined) ?? [],
        iova: iova(parseU64(a.iova, 'arg.iova')),
        size: bytes(parseU64(a.size, 'arg.size')),
      };
      if (typeof a.argsz === 'number') call.argsz = a.argsz;
      return call;
    }
    case 'VFIO_IOMMU_DIRTY_PAGES': {
      const a = (arg ?? {}) as Json;
      return { cmd, flags: (a.flags as string[] | undefined) ?? [] };
    }
    case 'VFIO_GROUP_GET_DEVICE_FD':
      // Version 1 never modelled it: kept as an unknown command, exactly as before.
      if (version === 1) return { cmd: 'unknown', name: cmd };
      if (typeof arg !== 'string' || arg === '') throw new FieldError('arg', 'expected the device name (a PCI address or an mdev UUID)');
      return { cmd, device: arg };
    default:
      return { cmd: 'unknown', name: cmd };
  }
}

function convertProt(v: unknown): MmapProt {
  const p = v as string[];
  return { read: p.includes('READ'), write: p.includes('WRITE'), exec: p.includes('EXEC') };
}

function pageCount(v: unknown, field: string): Pages {
  const n = parseU64(v, field);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new FieldError(field, 'is beyond any possible page count');
  return pages(Number(n));
}

/** Event types only version 2 has. */
const V2_TYPES = new Set(['dup', 'mlock', 'munlock', 'mlockall', 'munlockall']);

/**
 * A version 1 file keeps reading exactly as before: the events, ops and
 * backings of version 2 in it are a trace error naming the field.
 */
function checkVersion(j: Json): void {
  const why = 'the header says "version": 1';
  if (V2_TYPES.has(j.type as string)) throw new FieldError('type', `event type ${JSON.stringify(j.type)} is version 2: ${why}`);
  if (j.type === 'process' && (j.op === 'fork' || j.op === 'exec')) throw new FieldError('op', `process op ${JSON.stringify(j.op)} is version 2: ${why}`);
  if (j.type === 'mmap' && j.backing === 'file') throw new FieldError('backing', `backing "file" is version 2: ${why}`);
}

export function convertEvent(j: Json, line: number, version: 1 | 2 = 2): TraceEvent {
  const seq = j.seq as number;
  if (version === 1) checkVersion(j);
  const observed = convertObserved(j);
  switch (j.type) {
    case 'process': {
      const e: TraceEvent = { seq, line, observed, type: 'process', pid: j.pid as number, op: j.op as 'start' };
      if (typeof j.parent === 'number') e.parent = j.parent;
      if (j.memlock_limit !== undefined) {
        e.memlockLimit = j.memlock_limit === 'unlimited' ? 'unlimited' : bytes(parseU64(j.memlock_limit, 'memlock_limit'));
      }
      if (j.cap_ipc_lock !== undefined) e.capIpcLock = j.cap_ipc_lock as boolean;
      if (typeof j.comm === 'string') e.comm = j.comm;
      return e;
    }
    case 'mmap': {
      const e: TraceEvent = {
        seq,
        line,
        observed,
        type: 'mmap',
        pid: j.pid as number,
        vaddr: vaddr(parseU64(j.vaddr, 'vaddr')),
        size: bytes(parseU64(j.size, 'size')),
        backing: j.backing as 'anon',
      };
      if (j.pfn !== undefined) e.pfn = pfn(parseU64(j.pfn, 'pfn'));
      if (j.hugepage_size !== undefined) e.hugepageSize = bytes(parseU64(j.hugepage_size, 'hugepage_size'));
      // Version 1 ignored these fields; it still does.
      if (version === 2) {
        if (j.prot !== undefined) e.prot = convertProt(j.prot);
        if (j.flags !== undefined) e.flags = j.flags as MmapFlag[];
        if (typeof j.fd === 'number') e.fd = j.fd;
        if (j.offset !== undefined) e.offset = bytes(parseU64(j.offset, 'offset'));
      }
      return e;
    }
    case 'mlock': {
      const flags = (j.flags as string[] | undefined) ?? [];
      return { seq, line, observed, type: 'mlock', pid: j.pid as number, vaddr: vaddr(parseU64(j.vaddr, 'vaddr')), size: bytes(parseU64(j.size, 'size')), onFault: flags.includes('ONFAULT') };
    }
    case 'munlock':
      return { seq, line, observed, type: 'munlock', pid: j.pid as number, vaddr: vaddr(parseU64(j.vaddr, 'vaddr')), size: bytes(parseU64(j.size, 'size')) };
    case 'mlockall': {
      const flags = j.flags as string[];
      const e: TraceEvent = {
        seq,
        line,
        observed,
        type: 'mlockall',
        pid: j.pid as number,
        current: flags.includes('CURRENT'),
        future: flags.includes('FUTURE'),
        onFault: flags.includes('ONFAULT'),
      };
      if (j.pages !== undefined) e.pages = pageCount(j.pages, 'pages');
      return e;
    }
    case 'munlockall':
      return { seq, line, observed, type: 'munlockall', pid: j.pid as number };
    case 'dup':
      return { seq, line, observed, type: 'dup', pid: j.pid as number, fd: j.fd as number, newfd: j.newfd as number, call: j.call as 'dup' };
    case 'munmap':
      return {
        seq,
        line,
        observed,
        type: 'munmap',
        pid: j.pid as number,
        vaddr: vaddr(parseU64(j.vaddr, 'vaddr')),
        size: bytes(parseU64(j.size, 'size')),
      };
    case 'open':
      return { seq, line, observed, type: 'open', pid: j.pid as number, fd: j.fd as number, path: j.path as string };
    case 'close':
      return { seq, line, observed, type: 'close', pid: j.pid as number, fd: j.fd as number };
    case 'ioctl':
      return { seq, line, observed, type: 'ioctl', pid: j.pid as number, fd: j.fd as number, call: convertIoctl(j, version) };
    case 'device': {
      const e: TraceEvent = { seq, line, observed, type: 'device', dev: j.dev as string, op: j.op as 'open' };
      // Version 1 ignored them; it still does.
      if (version === 2 && typeof j.pid === 'number') e.pid = j.pid;
      if (version === 2 && typeof j.fd === 'number') e.fd = j.fd;
      return e;
    }
    case 'pin': {
      const prot = j.prot as string[];
      return {
        seq,
        line,
        observed,
        type: 'pin',
        dev: j.dev as string,
        pages: convertPages(j),
        prot: { read: prot.includes('READ'), write: prot.includes('WRITE') },
      };
    }
    case 'unpin':
      return { seq, line, observed, type: 'unpin', dev: j.dev as string, pages: convertPages(j) };
    case 'dma_unmap_notify':
      return {
        seq,
        line,
        observed,
        type: 'dma_unmap_notify',
        dev: j.dev as string,
        iova: iova(parseU64(j.iova, 'iova')),
        size: bytes(parseU64(j.size, 'size')),
      };
    default:
      throw new FieldError('type', unknownType(j.type));
  }
}
