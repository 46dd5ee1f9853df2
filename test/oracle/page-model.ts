/**
 * The reference model: the simplest page-by-page emulation of the rules
 * pinledger implements with extents, for the three designs, written
 * independently of src/model (it shares only the event types). Used only
 * by the property tests, on small address spaces, to check that the real
 * model gives the same results, charges and findings after every event.
 *
 * Scope: one process, one container (fd 20), groups 1 and 2 (IOMMU units
 * A and B) and 40 (mediated, device "m1"), MAP/UNMAP (v1, v2, ALL), pins,
 * attach/detach through SET_CONTAINER / UNSET_CONTAINER / SET_IOMMU, device
 * open/close, setrlimit. Every address is a page number here.
 */
import type { TraceEvent } from '../../src/model/events.js';

export type Design = 'upstream' | 'rfc-v5' | 'iommufd-compat';

const E = { EFAULT: -14, EPERM: -1, ENOENT: -2, E2BIG: -7, EBADF: -9, ENOMEM: -12, EACCES: -13, EBUSY: -16, EEXIST: -17, ENODEV: -19, EINVAL: -22, ENOTTY: -25, EDEADLK: -35, EADDRINUSE: -98 };

export interface Unit {
  /** Aperture in pages, inclusive. */
  first: number;
  last: number;
  /** Reserved pages, inclusive windows. */
  reserved: [number, number][];
}

export const UNITS: Record<number, Unit> = {
  1: { first: 0, last: 63, reserved: [[40, 41]] },
  2: { first: 0, last: 31, reserved: [] },
};
export const MDEV_GROUP = 40;

interface Mapping {
  id: number;
  first: number;
  pages: number;
  va: number;
  prot: number;
  lockCap: boolean;
  /** Pinned and mapped for the IOMMU. */
  pinned: boolean;
  /** Per page: charged for the IOMMU mapping (upstream/iommufd: also what pins charged before a domain). */
  charged: boolean[];
  invalid: boolean;
}

export interface Outcome {
  ret: number;
  lockedVm: number;
  findings: string[];
}

export class PageModel {
  private locked = 0;
  private limit = Infinity;
  private cap = false;
  // core
  private readonly groupFd = new Map<number, number>(); // fd -> group
  private readonly groupIn = new Set<number>(); // groups in the container
  private backend: { v2: boolean } | undefined;
  private readonly attached: number[] = []; // groups attached to the backend, in order
  private deviceOpen = false;
  private readonly devicePins = new Map<number, number>();
  // backend
  private maps: Mapping[] = [];
  private nextId = 1;
  /** upstream/iommufd: vpfn refcounts by page; rfc-v5: pins by page with ref and whether reported. */
  private vpfn = new Map<number, number>();
  private v5pins = new Map<number, { ref: number; reported: boolean }>();
  private v5charged = 0;
  /** Whether an IOMMU group was ever attached to this backend (type1's iova_list is set). */
  private listSet = false;
  private findings: string[] = [];

  constructor(readonly design: Design) {}

  private iommuGroups(): number[] {
    return this.attached.filter((g) => g !== MDEV_GROUP);
  }
  private hasDomain(): boolean {
    return this.iommuGroups().length > 0;
  }
  private mdevAttached(): boolean {
    return this.attached.includes(MDEV_GROUP);
  }
  private mapAt(p: number): Mapping | undefined {
    return this.maps.find((m) => p >= m.first && p < m.first + m.pages);
  }
  private valid(first: number, pages: number): boolean {
    for (const g of this.iommuGroups()) {
      const u = UNITS[g]!;
      if (first < u.first || first + pages - 1 > u.last) return false;
      for (const [a, b] of u.reserved) if (first <= b && first + pages - 1 >= a) return false;
    }
    return true;
  }
  private accounts(m: { lockCap: boolean }): boolean {
    return this.design !== 'iommufd-compat' || !m.lockCap;
  }
  private charge(n: number): void {
    this.locked += n;
  }
  private uncharge(n: number): void {
    this.locked -= n;
    if (this.locked < 0) {
      this.findings.push('ACCT_UNDERFLOW');
      this.locked = 0;
    }
  }
  private overLimit(n: number, lockCap: boolean): boolean {
    return !lockCap && this.locked + n > this.limit;
  }

  apply(e: TraceEvent): Outcome {
    this.findings = [];
    const ret = this.dispatch(e);
    return { ret, lockedVm: this.locked, findings: [...this.findings].sort() };
  }

  private dispatch(e: TraceEvent): number {
    switch (e.type) {
      case 'process':
        if (e.memlockLimit !== undefined) this.limit = e.memlockLimit === 'unlimited' ? Infinity : Number(e.memlockLimit / 4096n);
        if (e.capIpcLock !== undefined) this.cap = e.capIpcLock;
        return 0;
      case 'open': {
        if (e.path === '/dev/vfio/vfio') return e.fd;
        this.groupFd.set(e.fd, Number(e.path.split('/').pop()));
        return e.fd;
      }
      case 'device':
        if (e.op === 'open') {
          if (!this.groupIn.has(MDEV_GROUP) || !this.backend) return E.EINVAL;
          if (this.deviceOpen) return E.EBUSY;
          this.deviceOpen = true;
          return 0;
        }
        if (!this.deviceOpen) return E.EINVAL;
        this.deviceOpen = false;
        if (this.devicePins.size > 0) this.findings.push('PIN_LEAK');
        this.devicePins.clear();
        return 0;
      case 'pin':
      case 'unpin': {
        const run = e.pages.kind === 'run' ? e.pages : undefined;
        const npage = run ? run.npage : 0;
        if (!this.deviceOpen || npage === 0) return E.EINVAL;
        if (npage > 512) return E.E2BIG;
        if (!this.backend) return E.ENOTTY;
        const first = Number(run!.iova / 4096n);
        const pages = Array.from({ length: npage }, (_, i) => first + i);
        if (e.type === 'pin') {
          const r = this.pin(pages, e.prot.read, e.prot.write);
          if (r > 0) for (const p of pages) this.devicePins.set(p, (this.devicePins.get(p) ?? 0) + 1);
          return r;
        }
        for (const p of pages) {
          const n = this.devicePins.get(p) ?? 0;
          if (n === 0) this.findings.push('UNPIN_NOT_PINNED');
          else if (n === 1) this.devicePins.delete(p);
          else this.devicePins.set(p, n - 1);
        }
        return this.unpin(pages);
      }
      case 'ioctl':
        return this.ioctl(e);
      default:
        return 0;
    }
  }

  private ioctl(e: TraceEvent & { type: 'ioctl' }): number {
    const c = e.call;
    if (e.fd === 20) {
      switch (c.cmd) {
        case 'VFIO_SET_IOMMU': {
          if (this.groupIn.size === 0 || this.backend) return E.EINVAL;
          const v2 = c.iommuType === 'VFIO_TYPE1v2_IOMMU';
          if (!v2 && c.iommuType !== 'VFIO_TYPE1_IOMMU') return this.design === 'iommufd-compat' ? E.EINVAL : E.ENODEV;
          this.backend = { v2 };
          for (const g of [...this.groupIn]) {
            const r = this.attach(g);
            if (r !== 0) {
              for (const a of [...this.attached].reverse()) this.detach(a);
              this.release();
              this.backend = undefined;
              return r;
            }
          }
          return 0;
        }
        case 'VFIO_IOMMU_MAP_DMA':
          if (!this.backend) return E.EINVAL;
          return this.map(Number(c.iova / 4096n), Number(c.size / 4096n), Number(c.vaddr / 4096n), c.flags);
        case 'VFIO_IOMMU_UNMAP_DMA':
          if (!this.backend) return E.EINVAL;
          return this.unmap(Number(c.iova / 4096n), Number(c.size / 4096n), c.flags);
        default:
          return 0;
      }
    }
    const g = this.groupFd.get(e.fd);
    if (g === undefined) return E.EBADF;
    if (c.cmd === 'VFIO_GROUP_SET_CONTAINER') {
      if (this.groupIn.has(g)) return E.EINVAL;
      if (this.backend) {
        const r = this.attach(g);
        if (r !== 0) return r;
      }
      this.groupIn.add(g);
      return 0;
    }
    if (c.cmd === 'VFIO_GROUP_UNSET_CONTAINER') {
      if (!this.groupIn.has(g)) return E.EINVAL;
      if (g === MDEV_GROUP && this.deviceOpen) return E.EBUSY;
      if (this.backend) this.detach(g);
      this.groupIn.delete(g);
      if (this.backend && this.groupIn.size === 0) {
        this.release();
        this.backend = undefined;
      }
      return 0;
    }
    return 0;
  }

  // ---- backend -------------------------------------------------------------

  private map(first: number, pages: number, va: number, flags: string[]): number {
    const iommufd = this.design === 'iommufd-compat';
    const known = iommufd ? ['READ', 'WRITE'] : ['READ', 'WRITE', 'VADDR'];
    if (flags.some((f) => !known.includes(f))) return E.EINVAL;
    const prot = (flags.includes('READ') ? 1 : 0) | (flags.includes('WRITE') ? 2 : 0);
    if (!iommufd && prot === 0) return E.EINVAL;
    if (pages === 0) return E.EINVAL;
    const overlap = this.maps.some((m) => first < m.first + m.pages && m.first < first + pages);
    if (iommufd) {
      if (!this.valid(first, pages)) return E.EINVAL;
      if (overlap) return E.EEXIST;
    } else {
      if (overlap) return E.EEXIST;
      if (!this.valid(first, pages)) return E.EINVAL;
    }
    const m: Mapping = { id: this.nextId++, first, pages, va, prot, lockCap: this.cap, pinned: false, charged: new Array<boolean>(pages).fill(false), invalid: false };
    if (this.hasDomain()) {
      if (this.accounts(m)) {
        if (this.overLimit(pages, m.lockCap)) {
          this.findings.push('ACCT_LIMIT');
          return E.ENOMEM;
        }
        this.charge(pages);
        m.charged.fill(true);
      }
      m.pinned = true;
    }
    this.maps.push(m);
    return 0;
  }

  /** The pages of mapping m's charge that stay with vpfns when it is unpinned. */
  private removeMapping(m: Mapping): void {
    const charged = m.charged.filter(Boolean).length;
    const v5 = this.design === 'rfc-v5';
    if (m.pinned) this.uncharge(charged);
    else if (!v5 && charged > 0) {
      // Unmapped but holding vpfn charges: they stay charged (vfio_remove_dma WARN).
      this.findings.push('ACCT_LEAK');
      this.leaked += charged;
    }
    for (let p = m.first; p < m.first + m.pages; p++) this.vpfn.delete(p);
    this.maps = this.maps.filter((x) => x !== m);
  }
  private leaked = 0;

  private unmap(first: number, pages: number, flags: string[]): number {
    const all = flags.includes('ALL');
    const iommufd = this.design === 'iommufd-compat';
    if (iommufd) return this.unmapIommufd(first, pages, flags);
    if (all && (first !== 0 || pages !== 0)) return E.EINVAL;
    if (!all && pages === 0) return E.EINVAL;
    const v2 = this.backend!.v2;
    const start = all ? 0 : first;
    const end = all ? Infinity : first + pages;
    if (v2 && !all) {
      const a = this.mapAt(start);
      if (a && a.first !== start) return E.EINVAL;
      const b = this.mapAt(end - 1);
      if (b && b.first + b.pages !== end) return E.EINVAL;
    }
    const targets = this.maps.filter((m) => m.first + m.pages > start && m.first < end).sort((x, y) => x.first - y.first);
    for (const m of targets) {
      if (!v2 && start > m.first) break;
      let pinned = false;
      for (let p = m.first; p < m.first + m.pages; p++) if (this.vpfn.has(p)) pinned = true;
      if (pinned) {
        // Upstream: the driver ignored the notification; go on as if it unpinned.
        this.findings.push('PIN_LEAK');
        for (let p = m.first; p < m.first + m.pages; p++) {
          if (!this.vpfn.has(p)) continue;
          this.vpfn.delete(p);
          this.devicePins.delete(p);
          if (!this.hasDomain() && m.charged[p - m.first]) {
            m.charged[p - m.first] = false;
            this.uncharge(1);
          }
        }
      }
      this.removeMapping(m);
    }
    if (this.design === 'rfc-v5') this.v5Orphans();
    return 0;
  }

  private unmapIommufd(first: number, pages: number, flags: string[]): number {
    if (flags.some((f) => f !== 'ALL')) return E.EINVAL;
    const all = flags.includes('ALL');
    if (all && (first !== 0 || pages !== 0)) return E.EINVAL;
    if (!all && !this.backend!.v2) {
      for (const cut of [first + pages - 1, first - 1]) {
        if (cut < 0) continue;
        const m = this.mapAt(cut);
        if (m && m.first + m.pages - 1 !== cut) this.split(m, cut + 1);
      }
    }
    if (!all && pages === 0) return E.EINVAL;
    const start = all ? 0 : first;
    const last = all ? Infinity : first + pages - 1;
    let unmapped = 0;
    for (;;) {
      const m = this.maps.filter((x) => x.first <= last && x.first + x.pages - 1 >= start).sort((x, y) => x.first - y.first)[0];
      if (!m) break;
      if (m.first < start || m.first + m.pages - 1 > last) return E.ENOENT;
      for (let p = m.first; p < m.first + m.pages; p++) {
        if (this.vpfn.has(p)) {
          this.findings.push('PIN_LEAK');
          return E.EDEADLK;
        }
      }
      unmapped += m.pages;
      this.removeMapping(m);
    }
    return unmapped > 0 || all ? 0 : E.ENOENT;
  }

  private split(m: Mapping, at: number): void {
    const k = at - m.first;
    const high: Mapping = { ...m, id: this.nextId++, first: at, pages: m.pages - k, va: m.va + k, charged: m.charged.slice(k) };
    m.pages = k;
    m.charged = m.charged.slice(0, k);
    this.maps.push(high);
  }

  private pin(pages: number[], read: boolean, write: boolean): number {
    const v5 = this.design === 'rfc-v5';
    const iommufd = this.design === 'iommufd-compat';
    if (!v5 && !iommufd && !this.backend!.v2) return E.EACCES;
    const wanted = (read ? 1 : 0) | (write ? 2 : 0);
    if (v5) return this.pinV5(pages, wanted);
    const doAccounting = !this.hasDomain();
    const done: number[] = [];
    for (const p of pages) {
      const m = this.mapAt(p);
      let r = 0;
      if (!m) {
        this.findings.push('PIN_OUTSIDE_DMA');
        r = iommufd ? E.ENOENT : E.EINVAL;
      } else if ((m.prot & wanted) !== wanted) r = E.EPERM;
      else if (this.vpfn.has(p)) this.vpfn.set(p, this.vpfn.get(p)! + 1);
      else {
        if (doAccounting && this.accounts(m)) {
          if (this.overLimit(1, m.lockCap)) {
            this.findings.push('ACCT_LIMIT');
            r = E.ENOMEM;
          } else {
            this.charge(1);
            m.charged[p - m.first] = true;
          }
        }
        if (r === 0) this.vpfn.set(p, 1);
      }
      if (r !== 0) {
        for (const d of done) this.unpinOne(d, doAccounting);
        return r;
      }
      done.push(p);
    }
    return pages.length;
  }

  private unpinOne(p: number, doAccounting: boolean): void {
    const n = this.vpfn.get(p);
    if (n === undefined) return;
    if (n > 1) {
      this.vpfn.set(p, n - 1);
      return;
    }
    this.vpfn.delete(p);
    const m = this.mapAt(p)!;
    if (doAccounting && m.charged[p - m.first] && this.accounts(m)) {
      m.charged[p - m.first] = false;
      this.uncharge(1);
    }
  }

  private unpin(pages: number[]): number {
    const v5 = this.design === 'rfc-v5';
    const iommufd = this.design === 'iommufd-compat';
    if (!v5 && !iommufd && !this.backend!.v2) return E.EACCES;
    if (v5) {
      for (const p of pages) {
        const r = this.v5pins.get(p);
        if (!r) continue;
        this.v5charged--;
        this.uncharge(1);
        r.ref--;
        if (r.ref === 0) this.v5pins.delete(p);
      }
      return pages.length;
    }
    const doAccounting = !this.hasDomain();
    for (const p of pages) {
      if (!this.mapAt(p)) break;
      this.unpinOne(p, doAccounting);
    }
    return pages.length;
  }

  private pinV5(pages: number[], wanted: number): number {
    if (!this.mdevAttached()) return E.EINVAL;
    const done: number[] = [];
    let again = 0;
    for (const p of pages) {
      const m = this.mapAt(p);
      let r = 0;
      if (!m) {
        this.findings.push('PIN_OUTSIDE_DMA');
        r = E.EINVAL;
      } else if ((m.prot & wanted) !== wanted) r = E.EPERM;
      else if (this.overLimit(1, m.lockCap)) {
        this.findings.push('ACCT_LIMIT');
        r = E.ENOMEM;
      } else {
        if (m.pinned || this.v5pins.has(p)) again++;
        this.charge(1);
        this.v5charged++;
        const rec = this.v5pins.get(p);
        if (rec) rec.ref++;
        else this.v5pins.set(p, { ref: 1, reported: false });
        done.push(p);
      }
      if (r !== 0) {
        for (const d of done.reverse()) {
          const rec = this.v5pins.get(d)!;
          this.v5charged--;
          this.uncharge(1);
          rec.ref--;
          if (rec.ref === 0) this.v5pins.delete(d);
        }
        return r;
      }
    }
    if (again > 0) this.findings.push('ACCT_DOUBLE_CHARGE');
    return pages.length;
  }

  private v5Orphans(): void {
    let n = 0;
    for (const [p, r] of this.v5pins) {
      if (r.reported || this.mapAt(p)) continue;
      r.reported = true;
      n++;
    }
    if (n > 0) this.findings.push('PIN_LEAK');
  }

  private attach(g: number): number {
    if (this.attached.includes(g)) return E.EINVAL;
    if (g === MDEV_GROUP) {
      this.attached.push(g);
      return 0;
    }
    const u = UNITS[g]!;
    const iommufd = this.design === 'iommufd-compat';
    const conflictCode = iommufd ? E.EADDRINUSE : E.EINVAL;
    const outside = (m: Mapping) => m.first < u.first || m.first + m.pages - 1 > u.last;
    for (const m of this.maps) {
      // type1 checks the aperture against an iova_list, which a container that never had an IOMMU group lacks.
      if (outside(m) && (iommufd || this.listSet)) return conflictCode;
      for (const [a, b] of u.reserved) if (m.first <= b && m.first + m.pages - 1 >= a) return conflictCode;
    }
    const hadDomain = this.hasDomain();
    if (!hadDomain) {
      // vfio_iommu_replay, mapping by mapping in iova order: pin (charging
      // the pages not held as vpfns, within the limit), then map, which the
      // IOMMU driver refuses past what the domain translates. A failure
      // undoes the lot.
      this.maps.sort((a, b) => a.first - b.first);
      const charges = this.maps.map((m) => {
        if (!this.accounts(m)) return 0;
        let n = 0;
        for (let p = m.first; p < m.first + m.pages; p++) if (this.design === 'rfc-v5' || !this.vpfn.has(p)) n++;
        return n;
      });
      let running = 0;
      for (let i = 0; i < this.maps.length; i++) {
        const m = this.maps[i]!;
        if (!m.lockCap && this.accounts(m) && this.locked + running + charges[i]! > this.limit) {
          this.findings.push('ACCT_LIMIT');
          return E.ENOMEM;
        }
        if (outside(m)) return E.EFAULT;
        running += charges[i]!;
      }
      for (let i = 0; i < this.maps.length; i++) {
        const m = this.maps[i]!;
        this.charge(charges[i]!);
        if (this.accounts(m)) m.charged.fill(true);
        m.pinned = true;
      }
      if (this.design === 'rfc-v5') {
        let again = 0;
        for (const p of this.v5pins.keys()) if (this.mapAt(p)?.pinned) again++;
        if (again > 0) this.findings.push('ACCT_DOUBLE_CHARGE');
      }
    }
    this.attached.push(g);
    this.listSet = true;
    return 0;
  }

  private detach(g: number): void {
    const i = this.attached.indexOf(g);
    if (i < 0) return;
    this.attached.splice(i, 1);
    const v5 = this.design === 'rfc-v5';
    if (g === MDEV_GROUP) {
      if (v5) {
        this.uncharge(this.v5charged);
        this.v5charged = 0;
        this.v5pins.clear();
      }
      if (!this.hasDomain() && !this.mdevAttached()) this.removeAll();
      return;
    }
    if (this.hasDomain()) return;
    if (v5 || !this.mdevAttached()) {
      this.removeAll();
      if (v5) this.v5Orphans();
      return;
    }
    // Re-account: the charge becomes exactly the vpfns.
    for (const m of this.maps) {
      if (!m.pinned) continue;
      this.uncharge(m.charged.filter(Boolean).length);
      m.charged.fill(false);
      m.pinned = false;
      if (!this.accounts(m)) continue;
      for (let p = m.first; p < m.first + m.pages; p++) {
        if (this.vpfn.has(p)) {
          m.charged[p - m.first] = true;
          this.charge(1);
        }
      }
    }
  }

  private removeAll(): void {
    for (const m of [...this.maps].sort((a, b) => a.first - b.first)) this.removeMapping(m);
  }

  private release(): void {
    if (this.design === 'rfc-v5') {
      this.uncharge(this.v5charged);
      this.v5charged = 0;
      this.v5pins.clear();
    }
    this.removeAll();
    this.attached.length = 0;
    this.listSet = false;
  }
}
