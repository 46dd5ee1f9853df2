/**
 * QEMU's own VFIO trace events (hw/vfio/trace-events, `-trace 'vfio_*'`),
 * turned into vfio-trace events (lines: qemu-log-line.ts).
 *
 * QEMU traces map and unmap *attempts* with no result; a failed map shows
 * up only in error lines (QEMU's stderr, so only in a log that keeps it),
 * which become the map's observed `ret` (qemu-failures.ts). What a mapped
 * section is (guest RAM, a read-only firmware ROM, a device's mmapped BAR)
 * is inferred (qemu-regions.ts) and written as an `mmap` event describing
 * its host range before the map: private anonymous memory for a ROM (its
 * map READ-only), `pfnmap` for a BAR. What QEMU never says (the pid, the
 * fds, RLIMIT_MEMLOCK unless the command line gives it, the host address of
 * a vIOMMU mapping) is synthesised and listed in the header's
 * `import.unknown`.
 */
import { DMA_ERROR, MAP_FAILED, STRERROR } from './qemu-failures.js';
import { ALIASES, isContinuation, parseLine, regionHints, type Parsed } from './qemu-log-line.js';
import { HostMemory, RAM_BLOCK } from './qemu-host-memory.js';
import { SectionClassifier } from './qemu-regions.js';

export { parseLine } from './qemu-log-line.js';

export interface ImportStats {
  lines: number;
  events: number;
  /** Maps written with a failure QEMU logged (their `ret` is the errno). */
  refused: number;
  /** Maps of firmware ROMs written READ-only, and maps of BAR mmaps written over a `pfnmap` mmap. */
  romMaps: number;
  barMaps: number;
  /** Continuation lines of multi-line events (QEMU 7.2's vfio_pci_load_rom, vfio_populate_device_config). */
  continued: number;
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
}

type Event = Record<string, unknown>;

/** A map attempt still held back: a failure QEMU logs for it comes after its trace line. */
interface HeldMap {
  event: Event;
  iova: bigint;
  size: bigint;
  /** `mmap` events describing its memory, written before it. */
  before: Event[];
}

/** One inference the import made, for the header's `import.inferred`. */
interface Inference {
  what: string;
  maps: number;
  why: string;
}

/** Trace lines in, vfio-trace events out (each returned object is one event, without seq). */
export class QemuTraceConverter {
  readonly stats: ImportStats = { lines: 0, events: 0, refused: 0, romMaps: 0, barMaps: 0, continued: 0, unused: {}, unparsed: 0 };
  private containerOpen = false;
  private iommuSet = false;
  private nextFd = CONTAINER_FD + 1;
  /** Open group fds, oldest first, with the devices opened through them. */
  private readonly groupFds: { group: number; fd: number; devices: Set<string> }[] = [];
  /** The most recent map attempt, until a line that makes events (or the end) writes it out. */
  private held: HeldMap | undefined;
  /** Failures already given to maps, by `iova/size`: QEMU's final error names the first one again. */
  private readonly refusedMaps = new Map<string, number>();
  /** Sections QEMU traced but did not map (region_add_no_dma_map), by `iova/size`: their region_del unmaps nothing. */
  private readonly notMapped = new Set<string>();
  private readonly sections = new SectionClassifier();
  private readonly memory = new HostMemory(PID);
  /** `mmap` events of a map QEMU did not make after all, written with the next line's events. */
  private readonly pendingBefore: Event[] = [];
  private readonly inferences = new Map<string, Inference>();
  /** The event before the current line, while continuation lines may follow it. */
  private continuing: { name: string; expected: number } | undefined;
  private readonly groups = new Map<number, GroupInfo>();
  private readonly mdevs = new Set<string>();
  /** Set once an event uses a field of trace format version 2 (mmap prot/flags). */
  private v2 = false;

  /**
   * Returns the events completed by this line. A map is held back until the
   * next line that makes events, so that its failure, logged after it, can
   * still be given to it: error lines and trace lines pinledger does not use
   * (another thread's, say) make none.
   */
  line(line: string): Event[] {
    this.stats.lines++;
    if (this.continuing && isContinuation(line)) {
      this.continued(this.continuing);
      return [];
    }
    this.continuing = undefined;
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
    const p = parseLine(line, used);
    if (!p) {
      if (line.trim() !== '') this.stats.unparsed++;
      return [];
    }
    this.continuing = { name: p.name, expected: p.more ?? 0 };
    const { events, map } = this.convert(p, line);
    const out = events.length > 0 || map ? this.flush() : [];
    out.push(...events);
    if (map) this.held = map;
    return this.done(out);
  }

  /** Whatever is still held back, at the end of the log. */
  end(): Event[] {
    return this.done(this.flush());
  }

  /** The trace format version the events need: 2 once an `mmap` with prot/flags was written. */
  get version(): 1 | 2 {
    return this.v2 ? 2 : 1;
  }

  /** The groups and devices the log named, for the header. */
  topology(): { groups: Record<string, unknown>[] } {
    const groups = [...this.groups.values()].map((g) => {
      const mdev = g.devices.some((d) => this.mdevs.has(d));
      return mdev ? { id: g.id, mdev_parent: 'unknown', devices: g.devices } : { id: g.id, devices: g.devices };
    });
    return { groups };
  }

  /** What the import inferred about mapped sections, one sentence each, for the header's `import.inferred`. */
  inferred(): string[] {
    return [...this.inferences.values()].map((i) => `${i.what}: ${i.maps} map${i.maps === 1 ? '' : 's'} (${i.why})`);
  }

  /** A continuation line: expected after QEMU 7.2's two-line events; after any other event it is attached and reported. */
  private continued(c: { name: string; expected: number }): void {
    this.stats.continued++;
    if (c.expected > 0) c.expected--;
    else this.count(`${c.name} continuation line (not a known multi-line event)`);
  }

  /** One trace line's events, and the map attempt it makes (held back, not among the events). */
  private convert(p: Parsed, line: string): { events: Event[]; map?: HeldMap } {
    const ts = p.ts === undefined ? {} : { ts: p.ts };
    const a = p.args;
    switch (ALIASES[p.name]) {
      case 'device_attach':
        return { events: this.attach(a[0]!, Number(a[a.length - 1]), ts) };
      case 'device_detach':
        for (const g of this.groupFds) g.devices.delete(a[0]!);
        return { events: [{ type: 'device', dev: a[0], op: 'close', ...ts }] };
      case 'region_add_ram':
        return { events: [], map: this.regionAdd(BigInt(a[0]!), BigInt(a[1]!), a[2] === undefined || a[2] === 'nil' ? 0n : BigInt(a[2]), regionHints(line), ts) };
      case 'region_del': {
        const start = BigInt(a[0]!);
        const size = BigInt(a[1]!) - start + 1n;
        // vfio_listener_region_del traces every section, but unmaps only what region_add mapped.
        if (this.notMapped.delete(rangeKey(start, size))) return { events: [] };
        return { events: [this.unmap(start, size, ts)] };
      }
      case 'region_no_dma_map':
        this.noDmaMap(BigInt(a[1]!), BigInt(a[2]!));
        return { events: [] };
      case 'iommu_map_notify': {
        const start = BigInt(a[1]!);
        const size = BigInt(a[2]!) - start + 1n;
        if (a[0] === 'MAP') return { events: [], map: this.map(start, size, VIOMMU_VA + start, ['READ', 'WRITE'], [], ts) };
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
      case 'region_setup':
        if (a.length >= 6) this.sections.regionSetup(a[0]!, Number(a[1]), BigInt(a[3]!), BigInt(a[5]!));
        else this.count(`${p.name} (unreadable fields)`);
        return { events: [] };
      case 'region_mmap':
        if (a.length < 3 || !this.sections.regionMmap(a[0]!, BigInt(a[1]!), BigInt(a[2]!))) this.count(`${p.name} (not a BAR region set up before)`);
        return { events: [] };
      case 'region_unmap':
        return { events: a.length >= 1 ? this.memory.unmapBar(a[0]!, ts) : [] };
      case 'config_write':
        if (a.length >= 4) this.sections.configWrite(a[0]!, Number(a[1]), Number(a[2]), Number(a[3]));
        return { events: [] };
      case 'config_read':
        if (a.length >= 4) this.sections.configRead(a[0]!, Number(a[1]), Number(a[2]), Number(a[3]));
        return { events: [] };
      case 'mdev':
        if (a.length >= 2 && a[1] === '1') this.mdevs.add(a[0]!);
        return { events: [] };
      case 'device_get':
      case 'device_put':
      case 'region_add_iommu':
      case 'region_del_iommu':
      case 'region_skip':
      case 'region_no_dma_map_safe':
      case 'region_mmaps_enabled':
      case 'msix_fixup':
      case 'multi_line':
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
    const info = this.groups.get(group) ?? { id: group, devices: [] };
    if (!info.devices.includes(dev)) info.devices.push(dev);
    this.groups.set(group, info);
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

  /** `region_add [ram] START - END [VADDR]`: a map attempt of the section, its memory described first when it is a ROM or a BAR. */
  private regionAdd(start: bigint, end: bigint, vaddr: bigint, hints: { name?: string; readonly?: boolean }, ts: object): HeldMap {
    const size = end - start + 1n;
    const kind = this.sections.classify(start, end, vaddr, hints);
    if (kind.kind === 'rom') {
      this.stats.romMaps++;
      this.infer(`rom ${kind.rom}`, 'READ-only, its host range described as private anonymous memory, ' + kind.why);
      const before = this.described(this.memory.describe({ vaddr, size }, RAM_BLOCK, ts));
      return this.map(start, size, vaddr, ['READ'], before, ts);
    }
    if (kind.kind === 'bar') {
      this.stats.barMaps++;
      this.infer(`bar ${kind.region}`, `its host range 0x${kind.mmap.vaddr.toString(16)}+0x${kind.mmap.size.toString(16)} described as pfnmap, ${kind.why}`);
      const before = this.described(this.memory.describeBar(kind.region, kind.mmap, kind.prot, ts));
      return this.map(start, size, vaddr, ['READ', 'WRITE'], before, ts);
    }
    return this.map(start, size, vaddr, ['READ', 'WRITE'], [], ts);
  }

  /**
   * `vfio_listener_region_add_no_dma_map`: QEMU did not map the RAM-device
   * section (not aligned to the IOMMU's page size); when it follows the
   * section's region_add line, that attempt never reached the kernel.
   */
  private noDmaMap(offset: bigint, size: bigint): void {
    const h = this.held;
    if (!h || h.event.ret !== undefined || offset >= h.iova + h.size || offset + size <= h.iova) return;
    this.held = undefined;
    this.notMapped.add(rangeKey(h.iova, h.size));
    // Its memory is still what the mmap events say: they stay.
    this.pendingBefore.push(...h.before);
  }

  /** `mmap` events make the trace version 2 (their prot and flags). */
  private described(events: Event[]): Event[] {
    if (events.length > 0) this.v2 = true;
    return events;
  }

  private infer(what: string, why: string): void {
    const i = this.inferences.get(what);
    if (i) i.maps++;
    else this.inferences.set(what, { what, maps: 1, why });
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

  /** The held map, if any, with the mmap events before it, as the first events of a line's output. */
  private flush(): Event[] {
    const h = this.held;
    this.held = undefined;
    const out = this.pendingBefore.splice(0);
    if (h) out.push(...h.before, h.event);
    return out;
  }

  private count(name: string): void {
    this.stats.unused[name] = (this.stats.unused[name] ?? 0) + 1;
  }

  private map(iova: bigint, size: bigint, vaddr: bigint, flags: string[], before: Event[], ts: object): HeldMap {
    const event = { type: 'ioctl', pid: PID, fd: CONTAINER_FD, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags, vaddr: hex(vaddr), iova: hex(iova), size: hex(size) }, ...ts };
    return { event, iova, size, before };
  }

  private unmap(iova: bigint, size: bigint, ts: object): Event {
    return { type: 'ioctl', pid: PID, fd: CONTAINER_FD, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: [], iova: hex(iova), size: hex(size) }, ...ts };
  }
}

/** Events whose arguments the converter reads. */
const used = (name: string) => ALIASES[name] !== undefined;
const hex = (v: bigint) => '0x' + v.toString(16);
const rangeKey = (iova: bigint, size: bigint) => `${iova}/${size}`;

