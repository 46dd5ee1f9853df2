/**
 * The VFIO core above the backends: container, group and device files,
 * their ioctls and their release (drivers/vfio/container.c and group.c,
 * Linux 6.1), the device files that keep a group busy, and the entry of
 * vendor-driver pins (vfio_pin_pages in vfio_main.c). Errors are the
 * kernel's errnos, checked before anything changes.
 *
 * File descriptors are the kernel's: each fd of a process refers to an open
 * file, dup and fork make more fds refer to the same file, and a file is
 * released (its release fop: a container's, a group's, a device's) when its
 * last reference goes (fput), not at each close.
 */
import { Errno } from '../errno.js';
import type { GroupSpec, IoctlCall, PageList } from '../events.js';
import type { ModelEnv } from '../env.js';
import { expandPages } from '../common/page-list.js';
import { hex } from '../units.js';
import type { IoctlResult, IommuBackend, IommuDriver } from './driver.js';
import { type FdTables, type OpenFile, addRef, copyTable, dropRef, groupHeldElsewhere, holderOf, holds } from './fd-table.js';

export class Container {
  readonly groups: GroupState[] = [];
  backend: IommuBackend | undefined;
  fdOpen = true;
  /** A group has been attached at some point (counted once in its process's vfioContainers). */
  grouped = false;
  constructor(
    readonly id: number,
    readonly pid: number,
  ) {}
}

export class GroupState {
  container: Container | undefined;
  /** group->opened_file: the group's one open file. */
  fileOpen = false;
  /** The process holding the group file. */
  ownerPid: number | undefined;
  /** Open device files of this group (they hold the group file). */
  openDevices = new Set<string>();
  /** The group fd was closed while devices were open: release on the last device close. */
  closePending = false;
  /** Open device files per device (VFIO_GROUP_GET_DEVICE_FD): the device is released with the last one. */
  deviceFiles = new Map<string, number>();
  constructor(readonly spec: GroupSpec) {}
}

/** The range an event touched, so invariants check only that part. */
export interface Touched {
  container: Container;
  range?: { start: bigint; size: bigint };
}

/** VFIO_API_VERSION. */
const VFIO_API_VERSION = 0;

export class VfioCore {
  readonly containers = new Set<Container>();
  readonly groups = new Map<number, GroupState>();
  private readonly fds: FdTables = new Map();
  private nextContainerId = 0;

  get containersCreated(): number {
    return this.nextContainerId;
  }
  /** Containers (and ranges) the current event touched. */
  touched: Touched[] = [];
  /** What each vendor driver has pinned and not yet unpinned: device -> iova -> count. */
  private readonly devicePins = new Map<string, Map<bigint, number>>();
  /** Devices opened by name in a group whose topology lists no devices (a minimal trace): device -> group. */
  private namedDevices = new Map<string, number>();

  constructor(
    readonly env: ModelEnv,
    readonly driver: IommuDriver,
  ) {}

  private fdTable(pid: number): Map<number, OpenFile> {
    let t = this.fds.get(pid);
    if (!t) {
      t = new Map();
      this.fds.set(pid, t);
    }
    return t;
  }

  group(id: number): GroupState {
    let g = this.groups.get(id);
    if (!g) {
      g = new GroupState(this.env.topology.group(id));
      this.groups.set(id, g);
    }
    return g;
  }

  private touch(container: Container, range?: { start: bigint; size: bigint }): void {
    this.touched.push(range ? { container, range } : { container });
  }

  /** Installs a new open file at `fd`; an fd the model still has open is reported and closed first. */
  private install(pid: number, fd: number, file: OpenFile, what: string): void {
    const table = this.fdTable(pid);
    if (table.has(fd)) {
      this.env.report('TRACE_INCONSISTENT', `${what} as fd ${fd} of pid ${pid}, which is already open: the earlier file is closed first`, {
        pid,
        fd,
      });
      this.close(pid, fd);
    }
    table.set(fd, file);
  }

  /** open(2) of /dev/vfio/vfio, /dev/vfio/<group> or a device cdev: the fd or an errno. */
  open(pid: number, fd: number, path: string): number {
    if (this.fdTable(pid).has(fd)) {
      this.env.report('TRACE_INCONSISTENT', `Open of ${path} as fd ${fd} of pid ${pid}, which is already open: the earlier file is closed first`, {
        pid,
        fd,
      });
      this.close(pid, fd);
    }
    if (path === '/dev/vfio/vfio') {
      const c = new Container(this.nextContainerId++, pid);
      this.containers.add(c);
      this.fdTable(pid).set(fd, { kind: 'container', container: c, refs: 1 });
      return fd;
    }
    const m = /^\/dev\/vfio\/(\d+)$/.exec(path);
    if (!m) return -Errno.ENOENT; // vfio device cdevs arrive in 6.6; 6.1 has none
    const g = this.group(Number(m[1]));
    // vfio_group_fops_open: one open file per group.
    if (g.fileOpen) return -Errno.EBUSY;
    g.fileOpen = true;
    g.ownerPid = pid;
    g.closePending = false;
    this.fdTable(pid).set(fd, { kind: 'group', group: g, refs: 1 });
    return fd;
  }

  /** close(2): the fd goes; its file is released when no fd refers to it any more. */
  close(pid: number, fd: number): number {
    const table = this.fdTable(pid);
    const f = table.get(fd);
    if (!f) return -Errno.EBADF;
    table.delete(fd);
    if (dropRef(f)) this.release(f);
    else if (f.kind === 'group' && f.group.ownerPid === pid && !holds(this.fds, pid, f)) f.group.ownerPid = holderOf(this.fds, f);
    return 0;
  }

  /** The file's release fop, at its last reference (__fput). */
  private release(f: OpenFile): void {
    if (f.kind === 'container') {
      // vfio_fops_release: the container lives on while groups hold it.
      f.container.fdOpen = false;
      this.maybeFreeContainer(f.container);
      return;
    }
    if (f.kind === 'device') {
      this.releaseDeviceFile(f.dev, f.group);
      return;
    }
    const g = f.group;
    if (g.openDevices.size > 0) {
      // Device files hold a reference to the group file.
      g.closePending = true;
      return;
    }
    this.releaseGroupFile(g);
  }

  /** What kind of VFIO file an fd of a process is, if any. */
  fileKind(pid: number, fd: number): OpenFile['kind'] | undefined {
    return this.fds.get(pid)?.get(fd)?.kind;
  }

  /**
   * dup, dup2, dup3, fcntl(F_DUPFD): `newfd` refers to the same file as
   * `fd`. dup2/dup3 onto an open fd close it first (do_dup2 -> filp_close);
   * dup2 of an fd onto itself does nothing, dup3 refuses it (-EINVAL).
   * dup and F_DUPFD pick a free fd: one the model has open is reported.
   */
  dup(pid: number, fd: number, newfd: number, call: 'dup' | 'dup2' | 'dup3' | 'fcntl'): number {
    const table = this.fdTable(pid);
    const f = table.get(fd);
    if (!f) return -Errno.EBADF;
    if (fd === newfd) {
      if (call === 'dup3') return -Errno.EINVAL;
      if (call !== 'dup2') this.env.report('TRACE_INCONSISTENT', `${call} of fd ${fd} of pid ${pid} returned the same fd`, { pid, fd });
      return newfd;
    }
    if (table.has(newfd)) {
      if (call === 'dup' || call === 'fcntl') {
        this.env.report('TRACE_INCONSISTENT', `${call} of fd ${fd} of pid ${pid} returned fd ${newfd}, which the model has open: the earlier file is closed first`, {
          pid,
          fd: newfd,
        });
      }
      this.close(pid, newfd);
    }
    table.set(newfd, f);
    addRef(f);
    return newfd;
  }

  /**
   * fork: the child gets a copy of the parent's fd table (the same open
   * files, each one more reference). A child that still has fds (a pid the
   * trace reuses without its exit) is closed down first, and reported.
   */
  fork(parent: number, child: number): void {
    const old = this.fds.get(child);
    if (old && old.size > 0) {
      this.env.report('TRACE_INCONSISTENT', `Fork of pid ${child}, which still has VFIO fds open: they are closed first`, { pid: child });
      this.exitProcess(child);
    }
    this.fds.set(child, copyTable(this.fdTable(parent)));
  }

  /** vfio_group_fops_release. */
  private releaseGroupFile(g: GroupState): void {
    g.fileOpen = false;
    g.ownerPid = undefined;
    g.closePending = false;
    if (g.container) this.detachContainer(g);
  }

  private maybeFreeContainer(c: Container): void {
    if (!c.fdOpen && c.groups.length === 0) this.containers.delete(c);
  }

  /**
   * Closes every fd of an exiting process, lowest fd first (close_files).
   * Devices opened by `device` events (no fd) of a group whose file only
   * this process holds are released first, as before device files.
   */
  exitProcess(pid: number): void {
    const table = this.fdTable(pid);
    for (const g of this.groups.values()) {
      if (g.ownerPid !== pid || groupHeldElsewhere(this.fds, pid, g)) continue;
      for (const dev of [...g.openDevices]) if (!this.deviceFilesOf(g).get(dev)) this.device(dev, 'close');
    }
    for (const fd of [...table.keys()].sort((a, b) => a - b)) this.close(pid, fd);
    this.fds.delete(pid);
  }

  private deviceFilesOf(g: GroupState): Map<string, number> {
    // A state saved before device files existed restores without the map.
    return (g.deviceFiles ??= new Map());
  }

  /** `observedRet`: the trace's result, which names the fd VFIO_GROUP_GET_DEVICE_FD installed. */
  ioctl(pid: number, fd: number, seq: number, call: IoctlCall, observedRet?: number): IoctlResult {
    const f = this.fdTable(pid).get(fd);
    if (!f) return { ret: -Errno.EBADF };
    if (f.kind === 'container') return this.containerIoctl(f.container, pid, seq, call);
    // vfio_device_fops_unl_ioctl: the device's own ioctls (VFIO_DEVICE_*) are not modelled.
    if (f.kind === 'device') return { ret: -Errno.ENOTTY };
    return this.groupIoctl(f.group, pid, call, observedRet);
  }

  /** vfio_fops_unl_ioctl. */
  private containerIoctl(c: Container, pid: number, seq: number, call: IoctlCall): IoctlResult {
    switch (call.cmd) {
      case 'VFIO_GET_API_VERSION':
        return { ret: VFIO_API_VERSION };
      case 'VFIO_CHECK_EXTENSION':
        // The container's backend if set, otherwise any registered driver.
        return c.backend ? c.backend.ioctl(pid, seq, call) : { ret: this.driver.checkExtension(call.extension) };
      case 'VFIO_SET_IOMMU':
        return { ret: this.setIommu(c, pid, call.iommuType) };
      default: {
        if (!c.backend) return { ret: -Errno.EINVAL };
        const r = c.backend.ioctl(pid, seq, call);
        if (r.forcedUnpins) this.forgetPins(c, r.forcedUnpins);
        this.touch(c, r.touched ?? touchedRange(call));
        return r;
      }
    }
  }

  /** vfio_ioctl_set_iommu and __vfio_container_attach_groups. */
  private setIommu(c: Container, pid: number, iommuType: string): number {
    if (c.groups.length === 0 || c.backend) return -Errno.EINVAL;
    // The driver refuses a type it does not support with its own errno.
    const backend = this.driver.open(this.env, iommuType);
    if (typeof backend === 'number') return backend;
    const attached: GroupState[] = [];
    for (const g of c.groups) {
      const ret = backend.attachGroup(pid, g.spec);
      if (ret !== 0) {
        for (const a of attached.reverse()) backend.detachGroup(a.spec);
        backend.release();
        return ret;
      }
      attached.push(g);
    }
    c.backend = backend;
    this.touch(c);
    return 0;
  }

  /** vfio_group_fops_unl_ioctl. */
  private groupIoctl(g: GroupState, pid: number, call: IoctlCall, observedRet?: number): IoctlResult {
    switch (call.cmd) {
      case 'VFIO_GROUP_GET_DEVICE_FD':
        return { ret: this.getDeviceFd(g, pid, call.device, observedRet) };
      case 'VFIO_GROUP_GET_STATUS': {
        const flags = ['VIABLE'];
        if (g.container) flags.push('CONTAINER_SET');
        return { ret: 0, out: { flags } };
      }
      case 'VFIO_GROUP_SET_CONTAINER':
        return { ret: this.setContainer(g, pid, call.containerFd) };
      case 'VFIO_GROUP_UNSET_CONTAINER':
        if (!g.container) return { ret: -Errno.EINVAL };
        // container_users: device files keep the group in its container.
        if (g.openDevices.size > 0) return { ret: -Errno.EBUSY };
        this.detachContainer(g);
        return { ret: 0 };
      default:
        return { ret: -Errno.ENOTTY };
    }
  }

  /** vfio_group_ioctl_set_container and vfio_container_attach_group. */
  private setContainer(g: GroupState, pid: number, containerFd: number): number {
    const f = this.fdTable(pid).get(containerFd);
    if (!f) return -Errno.EBADF;
    if (g.container) return -Errno.EINVAL;
    if (f.kind !== 'container') return -Errno.EINVAL;
    const c = f.container;
    if (c.backend) {
      const ret = c.backend.attachGroup(pid, g.spec);
      if (ret !== 0) return ret;
      this.touch(c);
    }
    g.container = c;
    c.groups.push(g);
    if (!c.grouped) {
      c.grouped = true;
      this.env.process(c.pid).vfioContainers++;
    }
    return 0;
  }

  /** vfio_group_detach_container: the last group out releases the backend. */
  private detachContainer(g: GroupState): void {
    const c = g.container!;
    if (c.backend) {
      c.backend.detachGroup(g.spec);
      this.touch(c);
    }
    g.container = undefined;
    c.groups.splice(c.groups.indexOf(g), 1);
    if (c.backend && c.groups.length === 0) {
      c.backend.release();
      c.backend = undefined;
    }
    this.maybeFreeContainer(c);
  }

  private groupOfDevice(dev: string): GroupState | undefined {
    // A state saved before named devices existed restores without the map.
    const id = this.env.topology.groupOfDevice(dev) ?? (this.namedDevices ??= new Map()).get(dev);
    return id === undefined ? undefined : this.group(id);
  }

  /**
   * vfio_group_get_device_fd: the device by name in this group
   * (vfio_device_get_from_name, -ENODEV), the group in a container with a
   * backend (vfio_device_assign_container, -EINVAL), then a new device
   * file (get_unused_fd_flags: the trace's ret names the fd; without one,
   * the lowest fd the model has free). Opening it is what lets a mediated
   * device's vendor driver pin. A second file of an open device opens it
   * again (open_count).
   */
  private getDeviceFd(g: GroupState, pid: number, dev: string, observedRet: number | undefined): number {
    const listed = this.env.topology.groupOfDevice(dev);
    if (listed !== undefined ? listed !== g.spec.id : g.spec.devices.length > 0) return -Errno.ENODEV;
    if (!g.container?.backend) return -Errno.EINVAL;
    const table = this.fdTable(pid);
    let fd = observedRet !== undefined && observedRet >= 0 ? observedRet : 0;
    if (observedRet === undefined || observedRet < 0) while (table.has(fd)) fd++;
    if (listed === undefined) (this.namedDevices ??= new Map()).set(dev, g.spec.id);
    this.install(pid, fd, { kind: 'device', dev, group: g, refs: 1 }, `VFIO_GROUP_GET_DEVICE_FD of ${dev}`);
    const files = this.deviceFilesOf(g);
    files.set(dev, (files.get(dev) ?? 0) + 1);
    g.openDevices.add(dev);
    return fd;
  }

  /** vfio_device_fops_release: the last file of a device closes the device (as `device` op close). */
  private releaseDeviceFile(dev: string, g: GroupState): void {
    const files = this.deviceFilesOf(g);
    const n = (files.get(dev) ?? 1) - 1;
    if (n > 0) {
      files.set(dev, n);
      return;
    }
    files.delete(dev);
    this.closeDevice(dev, g);
  }

  /**
   * A `device` event: a device of a group is opened or released as its
   * vendor driver sees it (version 1's way to open a device without a
   * file). Opening needs the group in a container with a backend (-EINVAL).
   * A device that device files hold (VFIO_GROUP_GET_DEVICE_FD) is that same
   * open seen from the driver: the event changes nothing, and its release
   * comes with the last close of its files.
   */
  device(dev: string, op: 'open' | 'close'): number {
    const g = this.groupOfDevice(dev);
    if (!g) {
      this.env.report('TRACE_INCONSISTENT', `Device ${dev} is in no group of the header's topology`, { dev });
      return -Errno.ENODEV;
    }
    if (this.deviceFilesOf(g).has(dev)) return 0;
    if (op === 'open') {
      if (!g.fileOpen || !g.container?.backend) return -Errno.EINVAL;
      if (g.openDevices.has(dev)) return -Errno.EBUSY;
      g.openDevices.add(dev);
      return 0;
    }
    if (!g.openDevices.has(dev)) return -Errno.EINVAL;
    this.closeDevice(dev, g);
    return 0;
  }

  /** The device is closed: its driver's outstanding pins are reported, and a group file waiting for it is released. */
  private closeDevice(dev: string, g: GroupState): void {
    g.openDevices.delete(dev);
    this.reportOutstandingPins(dev);
    if (g.openDevices.size === 0 && g.closePending) this.releaseGroupFile(g);
  }

  /** The container a device pins through, with the checks of vfio_pin_pages. */
  private pinTarget(dev: string, npage: number): { g: GroupState; backend: IommuBackend } | number {
    const g = this.groupOfDevice(dev);
    if (!g || !g.openDevices.has(dev) || npage === 0) return -Errno.EINVAL;
    // VFIO_PIN_PAGES_MAX_ENTRIES: one page of unsigned longs.
    if (npage > Number(this.env.pageSize / 8n)) return -Errno.E2BIG;
    if (g.spec.devices.length > 1) return -Errno.EINVAL;
    const backend = g.container?.backend;
    if (!backend) return -Errno.ENOTTY;
    return { g, backend };
  }

  pin(dev: string, pages: PageList, prot: { read: boolean; write: boolean }): number {
    const t = this.pinTarget(dev, pageCount(pages));
    if (typeof t === 'number') return t;
    const ret = t.backend.pinPages(t.g.spec, pages, prot);
    if (ret > 0) {
      const held = this.pinsOf(dev);
      for (const at of expandPages(pages, this.env.pageSize)) held.set(at, (held.get(at) ?? 0) + 1);
    }
    this.touch(t.g.container!, pageRange(pages, this.env.pageSize));
    return ret;
  }

  /**
   * An unpin of a page this device does not hold is reported here, for
   * every design alike; what the design does with it is its own business.
   */
  unpin(dev: string, pages: PageList): number {
    const t = this.pinTarget(dev, pageCount(pages));
    if (typeof t === 'number') return t;
    const held = this.pinsOf(dev);
    for (const at of expandPages(pages, this.env.pageSize)) {
      const n = held.get(at) ?? 0;
      if (n === 0) {
        this.env.report('UNPIN_NOT_PINNED', `Device ${dev} unpins iova ${hex(at)}, which it has not pinned`, { dev, iova: hex(at) });
      } else if (n === 1) held.delete(at);
      else held.set(at, n - 1);
    }
    const ret = t.backend.unpinPages(t.g.spec, pages);
    this.touch(t.g.container!, pageRange(pages, this.env.pageSize));
    return ret;
  }

  private pinsOf(dev: string): Map<bigint, number> {
    let m = this.devicePins.get(dev);
    if (!m) {
      m = new Map();
      this.devicePins.set(dev, m);
    }
    return m;
  }

  /** A released device still holding pins: the vendor driver leaked them. */
  private reportOutstandingPins(dev: string): void {
    const held = this.devicePins.get(dev);
    this.devicePins.delete(dev);
    if (!held || held.size === 0) return;
    this.env.report('PIN_LEAK', `Device ${dev} was released with ${held.size} pages still pinned by its vendor driver`, {
      dev,
      pages: held.size,
    });
  }

  /** The backend dropped pins the driver should have released (after an ignored unmap notification). */
  private forgetPins(c: Container, ranges: readonly { start: bigint; size: bigint }[]): void {
    for (const g of c.groups) {
      for (const dev of g.openDevices) {
        const held = this.devicePins.get(dev);
        if (!held) continue;
        for (const at of [...held.keys()]) {
          if (ranges.some((r) => at >= r.start && at < r.start + r.size)) held.delete(at);
        }
      }
    }
  }

  /** The process a device's pins are charged through (the group's owner). */
  ownerOfDevice(dev: string): number | undefined {
    return this.groupOfDevice(dev)?.ownerPid;
  }

  backends(): IommuBackend[] {
    const out: IommuBackend[] = [];
    for (const c of this.containers) if (c.backend) out.push(c.backend);
    return out;
  }
}

/**
 * The IOVA range a container ioctl can change: a map its range, an unmap its
 * range up to the end of the address space (unless the backend says how far
 * it went), anything else everything.
 */
function touchedRange(call: IoctlCall): { start: bigint; size: bigint } | undefined {
  if (call.cmd === 'VFIO_IOMMU_MAP_DMA') return { start: call.iova, size: call.size };
  if (call.cmd === 'VFIO_IOMMU_UNMAP_DMA' && !call.flags.includes('ALL')) {
    return { start: call.iova, size: (1n << 64n) - call.iova };
  }
  if (call.cmd === 'VFIO_IOMMU_GET_INFO' || call.cmd === 'VFIO_CHECK_EXTENSION') return { start: 0n, size: 0n };
  return undefined;
}

function pageCount(pages: PageList): number {
  return pages.kind === 'run' ? pages.npage : pages.iovas.length;
}

function pageRange(pages: PageList, pageSize: bigint): { start: bigint; size: bigint } | undefined {
  if (pages.kind === 'run') return { start: pages.iova, size: BigInt(pages.npage) * pageSize };
  return undefined;
}
