/**
 * The 2016 bimodal design under review (RFC v5, ../shared/background/),
 * on top of today's type1 mapping code: a container with a separate
 * mediated domain beside its IOMMU domains; "mediated-only" inferred from
 * an empty domain list (map then pins nothing); every vfio_pin_pages call
 * charging locked_vm for every page, whether or not a direct-assigned
 * mapping or an earlier pin already charged it (the double charge the
 * review points out); vfio_unpin_pages skipping frames it does not know
 * with a `continue`; no unmap notification to vendor drivers.
 *
 * Assumed where the review is silent (the v5 patch text is not at hand):
 * each unpin of a known frame uncharges one page; the container's release
 * unpins and uncharges every frame left in the mediated domain; the last
 * IOMMU group leaving unmaps every mapping, as type1 did before mediated
 * devices (no re-accounting); pins are charged to the mapping's task.
 */
import { Errno } from '../../errno.js';
import type { GroupSpec, IoctlCall, PageList } from '../../events.js';
import type { ModelEnv } from '../../env.js';
import { IOMMU_READ, IOMMU_WRITE } from '../../iommu/topology.js';
import { checkType1Invariants } from '../../type1/invariants.js';
import { reportPinOutsideDma } from '../../type1/pin-findings.js';
import { snapshotType1 } from '../../type1/snapshot.js';
import { chargeablePages } from '../../type1/vfio-dma.js';
import { VfioIommu } from '../../type1/vfio-iommu.js';
import { type Pfn, type Vaddr, hex } from '../../units.js';
import type { BackendSnapshot, IoctlResult, IommuBackend, IommuDriver } from '../../vfio/driver.js';
import { expandPages } from '../../common/page-list.js';
import { attachGroup, detachGroup } from '../upstream/attach.js';
import { checkExtensionNoContainer, type1Ioctl, type1Mode } from '../upstream/ioctl.js';
import { releaseAll, removeAllDmas } from '../upstream/remove.js';
import { MediatedDomain, type PinnedFrame } from './mediated-domain.js';
import type { ChargeOwner } from '../../env.js';

export class RfcV5Type1 implements IommuBackend {
  readonly iommu: VfioIommu;
  mediated: MediatedDomain | undefined;

  constructor(private readonly env: ModelEnv, v2: boolean, nesting: boolean) {
    this.iommu = new VfioIommu(env, v2, nesting);
  }

  ioctl(pid: number, seq: number, call: IoctlCall): IoctlResult {
    // The RFC's dmas never hold vpfns: pins live in the mediated domain.
    const r = type1Ioctl(this.iommu, pid, seq, call, () => undefined);
    if (call.cmd === 'VFIO_IOMMU_UNMAP_DMA' && r.ret === 0) this.reportOrphanedPins();
    return r;
  }

  /** No notifier: pins whose mapping is gone stay pinned and charged. */
  private reportOrphanedPins(): void {
    const m = this.mediated;
    if (!m) return;
    let pages = 0;
    let first: bigint | undefined;
    for (const [at, rec] of m.pins) {
      if (rec.orphanReported || this.iommu.dmaList.find(at, this.env.pageSize)) continue;
      rec.orphanReported = true;
      pages++;
      first ??= at;
    }
    if (pages > 0) {
      this.env.report(
        'PIN_LEAK',
        `Unmap left ${pages} pages pinned by vendor drivers outside any mapping (first iova ${hex(first!)}): the RFC design never tells them to unpin`,
        { pages, iova: hex(first!) },
      );
    }
  }

  attachGroup(pid: number, group: GroupSpec): number {
    if (this.mediated?.groups.some((g) => g.id === group.id)) return -Errno.EINVAL;
    if (group.kind === 'mdev') {
      if (this.iommu.findGroup(group.id)) return -Errno.EINVAL;
      this.mediated ??= new MediatedDomain();
      this.mediated.groups.push(group);
      return 0;
    }
    const hadDomain = this.iommu.hasIommuDomain();
    const ret = attachGroup(this.iommu, pid, group);
    if (ret === 0 && !hadDomain) this.reportReplayDoubleCharge();
    return ret;
  }

  /** vfio_iommu_replay pinned every mapping, including pages the vendor drivers had pinned and charged. */
  private reportReplayDoubleCharge(): void {
    const m = this.mediated;
    if (!m) return;
    let pages = 0;
    for (const [at, rec] of m.pins) {
      const f = m.pfnList.get(rec.pfn);
      if (f && !f.reserved && this.iommu.dmaList.find(at, this.env.pageSize)?.iommuMapped) pages++;
    }
    if (pages > 0) {
      this.env.report(
        'ACCT_DOUBLE_CHARGE',
        `The first IOMMU-backed group pinned and charged ${pages} pages again that vendor drivers had already pinned and charged`,
        { pages, cause: 'replay' },
      );
    }
  }

  detachGroup(group: GroupSpec): void {
    const m = this.mediated;
    const i = m ? m.groups.findIndex((g) => g.id === group.id) : -1;
    if (m && i >= 0) {
      m.groups.splice(i, 1);
      if (m.groups.length === 0) {
        this.unpinApiDomain(m);
        this.mediated = undefined;
        if (!this.iommu.hasIommuDomain()) removeAllDmas(this.iommu);
      }
      return;
    }
    detachGroup(this.iommu, group);
    this.reportOrphanedPins();
  }

  /** vfio_iommu_unpin_api_domain: every frame left is unpinned and uncharged. */
  private unpinApiDomain(m: MediatedDomain): void {
    for (const f of m.pfnList.values()) {
      if (!f.reserved) this.uncharge(m, f, f.refCount);
    }
    m.clear();
  }

  release(): void {
    if (this.mediated) this.unpinApiDomain(this.mediated);
    this.mediated = undefined;
    releaseAll(this.iommu);
  }

  /** One page charged to the mm of the mapping pinned through (nothing once that mm has gone). */
  private charge(m: MediatedDomain, owner: ChargeOwner, pfn: Pfn): void {
    if (!this.env.applyCharge(owner, [{ pfn, pages: 1 }], 1, { pins: 1 })) return;
    m.chargedByPid.set(owner.pid, (m.chargedByPid.get(owner.pid) ?? 0) + 1);
  }

  /** `pages` references of a frame uncharged from the mm its first pin charged. */
  private uncharge(m: MediatedDomain, f: PinnedFrame, pages: number): void {
    let reached = 0;
    for (let i = 0; i < pages; i++) if (this.env.applyCharge(f, [{ pfn: f.pfn, pages: 1 }], -1, { pins: 1 })) reached++;
    if (reached > 0) m.chargedByPid.set(f.pid, (m.chargedByPid.get(f.pid) ?? 0) - reached);
  }

  /**
   * vfio_pin_pages: each page is pinned through the mapping's task and
   * charged, always; a frame already listed gets another reference.
   */
  pinPages(_group: GroupSpec, pages: PageList, prot: { read: boolean; write: boolean }): number {
    const m = this.mediated;
    if (!m) return -Errno.EINVAL;
    const env = this.env;
    const wanted = (prot.read ? IOMMU_READ : 0) | (prot.write ? IOMMU_WRITE : 0);
    const iovas = expandPages(pages, env.pageSize);
    const done: bigint[] = [];
    let again = 0;
    for (const at of iovas) {
      const dma = this.iommu.dmaList.find(at, env.pageSize);
      let ret = 0;
      if (!dma) {
        reportPinOutsideDma(env, at);
        ret = -Errno.EINVAL;
      } else if ((dma.prot & wanted) !== wanted) ret = -Errno.EPERM;
      else {
        const mapper = env.mmOwner(dma);
        const t = mapper?.mm.translate((dma.vaddr + (at - dma.iova)) as Vaddr, 1);
        // The mm that mapped has gone (exec, exit): nothing to pin from (get_task_mm).
        if (!t) ret = -Errno.ENODEV;
        else if (!t.ok) ret = -Errno.EFAULT;
        else {
          const run = t.runs[0]!;
          const owner = env.process(dma.pid);
          if (!run.reserved && !dma.lockCap && owner.lockedVm + 1 > env.limitPages(owner)) {
            ret = env.refuseOverLimit(dma.pid, `Cannot pin iova ${hex(at)} for a mediated device: pid ${dma.pid} has ${owner.lockedVm} pages locked (RLIMIT_MEMLOCK)`, {
              pid: dma.pid,
              iova: hex(at),
              locked_vm: owner.lockedVm,
              needed: 1,
              limit_pages: env.limitPages(owner),
            });
          } else {
            if (!run.reserved) {
              if (dma.iommuMapped || m.pins.has(at)) again++;
              this.charge(m, dma, run.pfn);
            }
            m.addRef(run.pfn, run.reserved, dma);
            const rec = m.pins.get(at);
            if (rec) rec.count++;
            else m.pins.set(at, { pfn: run.pfn, count: 1, orphanReported: false });
            done.push(at);
          }
        }
      }
      if (ret !== 0) {
        for (const d of done.reverse()) this.unpinOne(m, d);
        return ret;
      }
    }
    if (again > 0) {
      env.report('ACCT_DOUBLE_CHARGE', `Pin charged ${again} pages again that were already charged in this container (by a direct-assigned mapping or an earlier pin)`, {
        pages: again,
        iova: hex(iovas[0]!),
        cause: 'pin',
      });
    }
    return iovas.length;
  }

  /** One unpin: a frame it does not know is skipped (`continue`), a known one uncharged by a page. */
  private unpinOne(m: MediatedDomain, at: bigint): void {
    const rec = m.pins.get(at);
    if (!rec) return;
    const f = m.pfnList.get(rec.pfn);
    if (!f) return;
    if (!f.reserved) this.uncharge(m, f, 1);
    m.dropRef(f);
    rec.count--;
    if (rec.count === 0) m.pins.delete(at);
  }

  unpinPages(_group: GroupSpec, pages: PageList): number {
    const m = this.mediated;
    if (!m) return -Errno.EINVAL;
    const iovas = expandPages(pages, this.env.pageSize);
    for (const at of iovas) this.unpinOne(m, at);
    return iovas.length;
  }

  chargedPids(): Set<number> {
    const pids = new Set<number>();
    for (const [pid, n] of this.iommu.chargedByPid) if (n !== 0) pids.add(pid);
    for (const [pid, n] of this.mediated?.chargedByPid ?? []) if (n !== 0) pids.add(pid);
    return pids;
  }

  chargedTo(pid: number): number {
    return (this.iommu.chargedByPid.get(pid) ?? 0) + (this.mediated?.chargedByPid.get(pid) ?? 0);
  }

  mmGone(pid: number): void {
    this.iommu.mmGone(pid);
    this.mediated?.chargedByPid.delete(pid);
  }

  checkInvariants(range?: { start: bigint; size: bigint }): void {
    // A mapping holds only its IOMMU charge; pins are charged in the mediated domain.
    checkType1Invariants(this.iommu, range, (dma) => (dma.iommuMapped ? chargeablePages(dma) : 0));
    const m = this.mediated;
    if (!m) return;
    const refs = m.chargeableRefs;
    let charged = 0;
    for (const n of m.chargedByPid.values()) charged += n;
    if (refs !== charged) {
      this.env.report('ACCT_INCONSISTENT', `The mediated domain holds ${refs} charged pin references but ${charged} charged pages`, { refs, charged });
    }
  }

  mappings(): number {
    return this.iommu.dmaList.count;
  }

  snapshot(): BackendSnapshot {
    const s = snapshotType1('rfc-v5', this.iommu);
    s.emulatedGroups = this.mediated?.groups.map((g) => g.id) ?? [];
    return s;
  }
}

export const rfcV5Driver: IommuDriver = {
  name: 'rfc-v5',
  checkExtension: checkExtensionNoContainer,
  open(env: ModelEnv, iommuType: string): IommuBackend | number {
    const mode = type1Mode(iommuType);
    return typeof mode === 'number' ? mode : new RfcV5Type1(env, mode.v2, mode.nesting);
  },
};
