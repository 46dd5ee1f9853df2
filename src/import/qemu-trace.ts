/**
 * QEMU's own VFIO trace events (hw/vfio/trace-events, `-trace 'vfio_*'`),
 * as the log backend prints them (no prefix, `TID@sec.usec:`, or an
 * ISO-8601 time) or as scripts/simpletrace.py prints a binary trace
 * (`name delta pid=N arg=value ...`), turned into vfio-trace events.
 *
 * QEMU traces map and unmap *attempts* with no result; a failed map shows
 * up only in error lines (QEMU's stderr, so only in a log that keeps it),
 * which become the map's observed `ret`: `VFIO_MAP_DMA failed: <strerror>`
 * at once (7.2's vfio_dma_map), and `vfio_dma_map(...) = -12 (...)`, newer
 * `vfio_container_dma_map(...) = -22 (...)`, at once or in the final error.
 * What QEMU never says (the pid, the fds, RLIMIT_MEMLOCK unless the command
 * line gives it, the host address of a vIOMMU mapping) is synthesised and
 * listed in the header's `import.unknown`.
 */
import { Errno } from '../model/errno.js';

/** A parsed trace line: the event name and its arguments in order. */
interface Parsed {
  name: string;
  args: string[];
  /** Nanoseconds or an ISO time, when the line had one. */
  ts?: number | string;
}

/** Old and new names of the events used (QEMU renamed several). */
const ALIASES: Record<string, string> = {
  vfio_disconnect_container: 'container_disconnect',
  vfio_container_disconnect: 'container_disconnect',
  vfio_put_group: 'group_put',
  vfio_group_put: 'group_put',
  vfio_get_device: 'device_get',
  vfio_device_get: 'device_get',
  vfio_attach_device: 'device_attach',
  vfio_device_attach: 'device_attach',
  vfio_realize: 'device_attach',
  vfio_detach_device: 'device_detach',
  vfio_device_detach: 'device_detach',
  vfio_listener_region_add_ram: 'region_add_ram',
  vfio_listener_region_del: 'region_del',
  vfio_iommu_map_notify: 'iommu_map_notify',
  vfio_listener_region_add_iommu: 'region_add_iommu',
  vfio_listener_region_del_iommu: 'region_del_iommu',
  vfio_listener_region_skip: 'region_skip',
  vfio_listener_region_add_skip: 'region_skip',
  vfio_listener_region_del_skip: 'region_skip',
  vfio_listener_region_add_no_dma_map: 'region_no_dma_map',
  vfio_mdev: 'mdev',
  vfio_dma_unmap_overflow_workaround: 'unmap_overflow_workaround',
  vfio_legacy_dma_unmap_overflow_workaround: 'unmap_overflow_workaround',
};

const PREFIX_TID = /^(\d+)@(\d+)\.(\d+):(\S+)\s?(.*)$/;
const PREFIX_ISO = /^(\d{4}-\d\d-\d\dT[\d:.]+Z?)\s+(\S+)\s?(.*)$/;
const PLAIN = /^(vfio_\S+)\s?(.*)$/;
const SIMPLETRACE = /^(vfio_\S+)\s+(-?[\d.]+)\s+pid=(\d+)\s*(.*)$/;
/** The error line of a failed map (any prefix: program name, `-msg timestamp=on` time, `-device ...` location). */
const DMA_ERROR = /\b(?:vfio_dma_map|vfio_container_dma_map)\(\s*(0x[0-9a-f]+|\(nil\)),\s*(0x[0-9a-f]+),\s*(0x[0-9a-f]+),\s*(0x[0-9a-f]+|\(nil\))\)\s*=\s*(-\d+)/i;

/** 7.2's vfio_dma_map: `error_report("VFIO_MAP_DMA failed: %s", strerror(errno))` right after the ioctl. */
const MAP_FAILED = /\bVFIO_MAP_DMA failed: (.*?)\s*$/;

/** glibc's strerror texts of the errnos a MAP_DMA returns; any other text is reported, not guessed. */
const STRERROR = new Map<string, number>([
  ['Cannot allocate memory', -Errno.ENOMEM],
  ['Invalid argument', -Errno.EINVAL],
  ['No space left on device', -Errno.ENOSPC],
  ['File exists', -Errno.EEXIST],
  ['Bad address', -Errno.EFAULT],
  ['Operation not permitted', -Errno.EPERM],
  ['Device or resource busy', -Errno.EBUSY],
]);

/** Numbers and words out of a formatted message, in order: hex, decimal, (names). */
function tokens(msg: string): string[] {
  const out: string[] = [];
  const re = /\(([^()\s]+)\)|(0x[0-9a-fA-F]+)|(-?\d+)|\b(MAP|UNMAP)\b/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(msg))) out.push(m[1] ?? m[2] ?? m[3] ?? m[4]!);
  return out;
}

export function parseLine(line: string): Parsed | undefined {
  let m = SIMPLETRACE.exec(line);
  if (m) {
    const args = [...m[4]!.matchAll(/(\w+)=(\S+)/g)].map((x) => x[2]!);
    return { name: m[1]!, args };
  }
  m = PREFIX_TID.exec(line);
  if (m) return { name: m[4]!, args: tokens(m[5]!), ts: Number(m[2]) * 1e9 + Number(m[3]!.padEnd(6, '0').slice(0, 6)) * 1e3 };
  m = PREFIX_ISO.exec(line);
  if (m && m[2]!.startsWith('vfio_')) return { name: m[2]!, args: tokens(m[3]!), ts: m[1]! };
  m = PLAIN.exec(line);
  if (m) return { name: m[1]!, args: tokens(m[2]!) };
  return undefined;
}

export interface ImportStats {
  lines: number;
  events: number;
  /** Maps written with a failure QEMU logged (their `ret` is the errno). */
  refused: number;
  /** Lines of known format whose event pinledger does not use, by event name. */
  unused: Record<string, number>;
  /** Lines that are not a trace line at all. */
  unparsed: number;
}

const PID = 1;
const CONTAINER_FD = 3;
/** Where synthetic host addresses of vIOMMU mappings live (the trace has none). */
const VIOMMU_VA = 0x7e0000000000n;

interface GroupInfo {
  id: number;
  devices: string[];
  mdev: boolean;
}

/** Pass 1: the groups and devices a log names, for the header's topology. */
export class TopologyScan {
  readonly groups = new Map<number, GroupInfo>();
  private readonly mdevs = new Set<string>();

  line(line: string): void {
    const p = parseLine(line);
    if (!p) return;
    const kind = ALIASES[p.name];
    if (kind === 'device_attach' && p.args.length >= 2) {
      const id = Number(p.args[p.args.length - 1]);
      const g = this.groups.get(id) ?? { id, devices: [], mdev: false };
      if (!g.devices.includes(p.args[0]!)) g.devices.push(p.args[0]!);
      this.groups.set(id, g);
    }
    if (kind === 'mdev' && p.args.length >= 2 && p.args[1] === '1') this.mdevs.add(p.args[0]!);
  }

  topology(): { groups: Record<string, unknown>[] } {
    const groups = [...this.groups.values()].map((g) => {
      const mdev = g.devices.some((d) => this.mdevs.has(d));
      return mdev ? { id: g.id, mdev_parent: 'unknown', devices: g.devices } : { id: g.id, devices: g.devices };
    });
    return { groups };
  }
}

type Event = Record<string, unknown>;

/** A map attempt still held back: a failure QEMU logs for it comes after its trace line. */
interface HeldMap {
  event: Event;
  iova: bigint;
  size: bigint;
}

/** Pass 2: trace lines in, vfio-trace events out (each returned object is one event, without seq). */
export class QemuTraceConverter {
  readonly stats: ImportStats = { lines: 0, events: 0, refused: 0, unused: {}, unparsed: 0 };
  private containerOpen = false;
  private iommuSet = false;
  private nextFd = CONTAINER_FD + 1;
  /** Open group fds, oldest first, with the devices opened through them. */
  private readonly groupFds: { group: number; fd: number; devices: Set<string> }[] = [];
  /** The most recent map attempt, until a line that makes events (or the end) writes it out. */
  private held: HeldMap | undefined;
  /** Failures already given to maps, by `iova/size`: QEMU's final error names the first one again. */
  private readonly refusedMaps = new Map<string, number>();

  /**
   * Returns the events completed by this line. A map is held back until the
   * next line that makes events, so that its failure, logged after it, can
   * still be given to it: error lines and trace lines pinledger does not use
   * (another thread's, say) make none.
   */
  line(line: string): Event[] {
    this.stats.lines++;
    const failed = MAP_FAILED.exec(line);
    if (failed) {
      this.mapFailed(failed[1]!);
      return [];
    }
    const err = DMA_ERROR.exec(line);
    if (err) {
      this.dmaError(BigInt(err[2]!), BigInt(err[3]!), Number(err[5]));
      return [];
    }
    const p = parseLine(line);
    if (!p) {
      if (line.trim() !== '') this.stats.unparsed++;
      return [];
    }
    const { events, map } = this.convert(p);
    const out = events.length > 0 || map ? this.flush() : [];
    out.push(...events);
    if (map) this.held = map;
    return this.done(out);
  }

  /** Whatever is still held back, at the end of the log. */
  end(): Event[] {
    return this.done(this.flush());
  }

  /** One trace line's events, and the map attempt it makes (held back, not among the events). */
  private convert(p: Parsed): { events: Event[]; map?: HeldMap } {
    const ts = p.ts === undefined ? {} : { ts: p.ts };
    const a = p.args;
    switch (ALIASES[p.name]) {
      case 'device_attach':
        return { events: this.attach(a[0]!, Number(a[a.length - 1]), ts) };
      case 'device_detach':
        for (const g of this.groupFds) g.devices.delete(a[0]!);
        return { events: [{ type: 'device', dev: a[0], op: 'close', ...ts }] };
      case 'region_add_ram': {
        const start = BigInt(a[0]!);
        const vaddr = a[2] === undefined || a[2] === 'nil' ? 0n : BigInt(a[2]);
        return { events: [], map: this.map(start, BigInt(a[1]!) - start + 1n, vaddr, ts) };
      }
      case 'region_del': {
        const start = BigInt(a[0]!);
        return { events: [this.unmap(start, BigInt(a[1]!) - start + 1n, ts)] };
      }
      case 'iommu_map_notify': {
        const start = BigInt(a[1]!);
        const size = BigInt(a[2]!) - start + 1n;
        if (a[0] === 'MAP') return { events: [], map: this.map(start, size, VIOMMU_VA + start, ts) };
        return { events: [this.unmap(start, size, ts)] };
      }
      case 'group_put': {
        // QEMU puts a group after its devices: any still open close first.
        const g = this.groupFds.shift();
        if (!g) {
          this.count(p.name);
          return { events: [] };
        }
        const events: Event[] = [...g.devices].map((dev) => ({ type: 'device', dev, op: 'close', ...ts }));
        events.push({ type: 'close', pid: PID, fd: g.fd, ...ts });
        return { events };
      }
      case 'container_disconnect': {
        const events: Event[] = this.containerOpen ? [{ type: 'close', pid: PID, fd: CONTAINER_FD, ...ts }] : [];
        this.containerOpen = false;
        this.iommuSet = false;
        return { events };
      }
      case 'device_get':
      case 'region_add_iommu':
      case 'region_del_iommu':
      case 'region_skip':
      case 'region_no_dma_map':
      case 'mdev':
      case 'unmap_overflow_workaround':
        // Understood, and nothing for the backend to do.
        return { events: [] };
      default:
        this.count(p.name);
        return { events: [] };
    }
  }

  /** A device of `group`: the container, the group's fd and its setup the first time. */
  private attach(dev: string, group: number, ts: object): Event[] {
    const out: Event[] = [];
    if (!this.containerOpen) {
      out.push({ type: 'open', pid: PID, fd: CONTAINER_FD, path: '/dev/vfio/vfio', ...ts });
      this.containerOpen = true;
    }
    let g = this.groupFds.find((x) => x.group === group);
    if (!g) {
      const fd = this.nextFd++;
      g = { group, fd, devices: new Set() };
      this.groupFds.push(g);
      out.push({ type: 'open', pid: PID, fd, path: `/dev/vfio/${group}`, ...ts });
      out.push({ type: 'ioctl', pid: PID, fd, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: CONTAINER_FD }, ...ts });
      if (!this.iommuSet) {
        out.push({ type: 'ioctl', pid: PID, fd: CONTAINER_FD, cmd: 'VFIO_SET_IOMMU', arg: 'VFIO_TYPE1v2_IOMMU', ...ts });
        this.iommuSet = true;
      }
    }
    g.devices.add(dev);
    out.push({ type: 'device', dev, op: 'open', ...ts });
    return out;
  }

  /**
   * `VFIO_MAP_DMA failed: <strerror>`: QEMU 7.2's vfio_dma_map prints it
   * right after the MAP_DMA ioctl it made for the most recent map attempt
   * (vfio_listener_region_add or vfio_iommu_map_notify), so it is that
   * attempt's result, whatever QEMU then does about it (a RAM device's BAR
   * is only reported; guest RAM fails the container setup).
   */
  private mapFailed(text: string): void {
    const ret = STRERROR.get(text);
    if (ret === undefined) {
      this.count(`VFIO_MAP_DMA failed: ${text}`);
      return;
    }
    const h = this.held;
    if (!h || h.event.ret !== undefined) {
      this.count('VFIO_MAP_DMA failed (no map attempt before it)');
      return;
    }
    this.refuse(h, ret);
  }

  /**
   * `vfio_dma_map(container, iova, size, vaddr) = -errno (...)`: a failure
   * of the held map when it names its range. In 7.2 the failure of guest RAM
   * at machine init is kept in container->error and printed only in the
   * final error (vfio_connect_container: "memory listener initialization
   * failed: Region pc.ram: vfio_dma_map(...)"), long after the map: naming a
   * map already refused, it confirms that failure and adds none.
   */
  private dmaError(iova: bigint, size: bigint, ret: number): void {
    const h = this.held;
    if (h && h.iova === iova && h.size === size) {
      if (h.event.ret === undefined) this.refuse(h, ret);
      else if (h.event.ret !== ret) this.count('vfio_dma_map error (differs from the failure recorded)');
      return;
    }
    const earlier = this.refusedMaps.get(rangeKey(iova, size));
    if (earlier === undefined) this.count('vfio_dma_map error (no matching map)');
    else if (earlier !== ret) this.count('vfio_dma_map error (differs from the failure recorded)');
  }

  private refuse(h: HeldMap, ret: number): void {
    h.event.ret = ret;
    this.refusedMaps.set(rangeKey(h.iova, h.size), ret);
    this.stats.refused++;
  }

  private done(out: Event[]): Event[] {
    this.stats.events += out.length;
    return out;
  }

  /** The held map, if any, as the first event of a line's output. */
  private flush(): Event[] {
    const h = this.held;
    this.held = undefined;
    return h ? [h.event] : [];
  }

  private count(name: string): void {
    this.stats.unused[name] = (this.stats.unused[name] ?? 0) + 1;
  }

  private map(iova: bigint, size: bigint, vaddr: bigint, ts: object): HeldMap {
    const event = { type: 'ioctl', pid: PID, fd: CONTAINER_FD, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: ['READ', 'WRITE'], vaddr: hex(vaddr), iova: hex(iova), size: hex(size) }, ...ts };
    return { event, iova, size };
  }

  private unmap(iova: bigint, size: bigint, ts: object): Event {
    return { type: 'ioctl', pid: PID, fd: CONTAINER_FD, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: [], iova: hex(iova), size: hex(size) }, ...ts };
  }
}

const hex = (v: bigint) => '0x' + v.toString(16);
const rangeKey = (iova: bigint, size: bigint) => `${iova}/${size}`;

/** What a QEMU trace log cannot say, for the header's `import.unknown`; each entry starts with the trace field it concerns. */
const UNKNOWN = {
  ret: 'ret of maps and unmaps (QEMU traces attempts; only a failed map leaves an error line)',
  pid: 'pid (one process, pid 1)',
  fd: 'fd (container fd 3, groups from 4)',
  memlock_limit: 'memlock_limit (RLIMIT_MEMLOCK: unlimited; import --memlock-limit gives it)',
  cap_ipc_lock: 'cap_ipc_lock (none)',
  vaddr: 'vaddr of vIOMMU mappings (synthetic)',
  flags: 'flags (all maps are READ|WRITE; read-only ones are not traced as such)',
  topology: 'topology.iommus (the default x86_64 unit)',
} as const;

/** `import.unknown`, less what the command line told: `memlockLimit` when --memlock-limit was given. */
export function importUnknown(known: { memlockLimit: boolean }): string[] {
  return Object.entries(UNKNOWN)
    .filter(([field]) => !(field === 'memlock_limit' && known.memlockLimit))
    .map(([, text]) => text);
}
