/**
 * QEMU's own VFIO trace events (hw/vfio/trace-events, `-trace 'vfio_*'`),
 * as the log backend prints them (no prefix, `TID@sec.usec:`, or an
 * ISO-8601 time) or as scripts/simpletrace.py prints a binary trace
 * (`name delta pid=N arg=value ...`), turned into vfio-trace events.
 *
 * QEMU traces map and unmap *attempts* with no result; a failed map shows
 * up only as an error line (`vfio_dma_map(...) = -12 (...)`, newer
 * `vfio_container_dma_map(...) = -22 (...)`), which becomes the map's
 * observed `ret`. What QEMU never says (the pid, the fds, RLIMIT_MEMLOCK,
 * the host address of a vIOMMU mapping) is synthesised and listed in the
 * header's `import.unknown`.
 */

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
  vfio_listener_region_add_no_dma_map: 'region_no_dma_map',
  vfio_mdev: 'mdev',
  vfio_dma_unmap_overflow_workaround: 'unmap_overflow_workaround',
  vfio_legacy_dma_unmap_overflow_workaround: 'unmap_overflow_workaround',
};

const PREFIX_TID = /^(\d+)@(\d+)\.(\d+):(\S+)\s?(.*)$/;
const PREFIX_ISO = /^(\d{4}-\d\d-\d\dT[\d:.]+Z?)\s+(\S+)\s?(.*)$/;
const PLAIN = /^(vfio_\S+)\s?(.*)$/;
const SIMPLETRACE = /^(vfio_\S+)\s+(-?[\d.]+)\s+pid=(\d+)\s*(.*)$/;
const DMA_ERROR = /\b(?:vfio_dma_map|vfio_container_dma_map)\(\s*(0x[0-9a-f]+|\(nil\)),\s*(0x[0-9a-f]+),\s*(0x[0-9a-f]+),\s*(0x[0-9a-f]+|\(nil\))\)\s*=\s*(-\d+)/i;

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

/** Pass 2: trace lines in, vfio-trace events out (each returned object is one event, without seq). */
export class QemuTraceConverter {
  readonly stats: ImportStats = { lines: 0, events: 0, unused: {}, unparsed: 0 };
  private containerOpen = false;
  private iommuSet = false;
  private nextFd = CONTAINER_FD + 1;
  /** Open group fds, oldest first, with the devices opened through them. */
  private readonly groupFds: { group: number; fd: number; devices: Set<string> }[] = [];
  private pendingMap: Record<string, unknown> | undefined;

  /** Returns the events completed by this line (a map is held back one line for its error). */
  line(line: string): Record<string, unknown>[] {
    this.stats.lines++;
    const out: Record<string, unknown>[] = [];
    const err = DMA_ERROR.exec(line);
    if (err) {
      const pm = this.pendingMap;
      const arg = pm?.arg as { iova: string; size: string } | undefined;
      if (pm && arg && BigInt(arg.iova) === BigInt(err[2]!) && BigInt(arg.size) === BigInt(err[3]!)) {
        pm.ret = Number(err[5]);
      } else {
        this.count('vfio_dma_map error (no matching map)');
      }
      return this.done(this.flush(out));
    }
    const p = parseLine(line);
    if (!p) {
      if (line.trim() !== '') this.stats.unparsed++;
      return this.done(this.flush(out));
    }
    this.flush(out);
    const kind = ALIASES[p.name];
    const ts = p.ts === undefined ? {} : { ts: p.ts };
    const a = p.args;
    switch (kind) {
      case 'device_attach': {
        const group = Number(a[a.length - 1]);
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
        g.devices.add(a[0]!);
        out.push({ type: 'device', dev: a[0], op: 'open', ...ts });
        break;
      }
      case 'device_detach':
        for (const g of this.groupFds) g.devices.delete(a[0]!);
        out.push({ type: 'device', dev: a[0], op: 'close', ...ts });
        break;
      case 'region_add_ram': {
        const start = BigInt(a[0]!);
        const end = BigInt(a[1]!);
        const vaddr = a[2] === undefined || a[2] === 'nil' ? 0n : BigInt(a[2]);
        this.pendingMap = this.map(start, end - start + 1n, vaddr, ts);
        break;
      }
      case 'region_del': {
        const start = BigInt(a[0]!);
        const end = BigInt(a[1]!);
        out.push(this.unmap(start, end - start + 1n, ts));
        break;
      }
      case 'iommu_map_notify': {
        const op = a[0];
        const start = BigInt(a[1]!);
        const end = BigInt(a[2]!);
        if (op === 'MAP') this.pendingMap = this.map(start, end - start + 1n, VIOMMU_VA + start, ts);
        else out.push(this.unmap(start, end - start + 1n, ts));
        break;
      }
      case 'group_put': {
        // QEMU puts a group after its devices: any still open close first.
        const g = this.groupFds.shift();
        if (!g) {
          this.count(p.name);
          break;
        }
        for (const dev of g.devices) out.push({ type: 'device', dev, op: 'close', ...ts });
        out.push({ type: 'close', pid: PID, fd: g.fd, ...ts });
        break;
      }
      case 'container_disconnect':
        if (this.containerOpen) out.push({ type: 'close', pid: PID, fd: CONTAINER_FD, ...ts });
        this.containerOpen = false;
        this.iommuSet = false;
        break;
      case 'device_get':
      case 'region_add_iommu':
      case 'region_del_iommu':
      case 'region_skip':
      case 'region_no_dma_map':
      case 'mdev':
      case 'unmap_overflow_workaround':
        // Understood, and nothing for the backend to do.
        break;
      default:
        this.count(p.name);
    }
    return this.done(out);
  }

  /** Whatever is still held back, at the end of the log. */
  end(): Record<string, unknown>[] {
    return this.done(this.flush([]));
  }

  private done(out: Record<string, unknown>[]): Record<string, unknown>[] {
    this.stats.events += out.length;
    return out;
  }

  /** The map held back for a possible error line goes out first. */
  private flush(out: Record<string, unknown>[]): Record<string, unknown>[] {
    if (this.pendingMap) {
      out.unshift(this.pendingMap);
      this.pendingMap = undefined;
    }
    return out;
  }

  private count(name: string): void {
    this.stats.unused[name] = (this.stats.unused[name] ?? 0) + 1;
  }

  private map(iova: bigint, size: bigint, vaddr: bigint, ts: object): Record<string, unknown> {
    return { type: 'ioctl', pid: PID, fd: CONTAINER_FD, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: ['READ', 'WRITE'], vaddr: hex(vaddr), iova: hex(iova), size: hex(size) }, ...ts };
  }

  private unmap(iova: bigint, size: bigint, ts: object): Record<string, unknown> {
    return { type: 'ioctl', pid: PID, fd: CONTAINER_FD, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: [], iova: hex(iova), size: hex(size) }, ...ts };
  }
}

const hex = (v: bigint) => '0x' + v.toString(16);

export const IMPORT_UNKNOWN = [
  'ret of maps and unmaps (QEMU traces attempts; only a failed map leaves an error line)',
  'pid (one process, pid 1)',
  'fds (container fd 3, groups from 4)',
  'RLIMIT_MEMLOCK and CAP_IPC_LOCK (unlimited, none)',
  'host addresses of vIOMMU mappings (synthetic)',
  'read-only mappings (all maps are READ|WRITE)',
  'IOMMU topology (the default x86_64 unit)',
];
