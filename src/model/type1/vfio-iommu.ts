/**
 * struct vfio_iommu: a type1 container's state. Plain data shared by the
 * type1-style designs; each design's module implements the operations.
 */
import type { ModelEnv } from '../env.js';
import type { GroupSpec } from '../events.js';
import { hex } from '../units.js';
import { DmaList } from './dma-list.js';
import type { Domain } from './domain.js';
import type { IovaRange } from './iova-list.js';
import type { VfioDma } from './vfio-dma.js';

export class VfioIommu {
  /** Newest first: list_add() puts a new domain at the head. */
  domains: Domain[] = [];
  /** emulated_iommu_groups: mediated groups, explicitly listed. */
  emulatedGroups: GroupSpec[] = [];
  iovaList: IovaRange[] = [];
  readonly dmaList = new DmaList();
  dmaAvail: number;
  /** PAGE_MASK while there is no domain. */
  pgsizeBitmap: bigint;
  dirtyPageTracking = false;
  vaddrInvalidCount = 0;
  /** Pages charged per task pid by this container's mappings (the ledger). */
  readonly chargedByPid = new Map<number, number>();
  private nextDomainId = 0;

  constructor(
    readonly env: ModelEnv,
    readonly v2: boolean,
    readonly nesting: boolean,
  ) {
    this.dmaAvail = env.params.dmaEntryLimit;
    this.pgsizeBitmap = pageMask(env);
  }

  allocDomainId(): number {
    return this.nextDomainId++;
  }

  /** Smallest supported page size (1 << __ffs(pgsize_bitmap)). */
  get minPageSize(): bigint {
    const b = this.pgsizeBitmap;
    return b & -b;
  }

  hasIommuDomain(): boolean {
    return this.domains.length > 0;
  }

  /** vfio_update_pgsize_bitmap. */
  updatePgsizeBitmap(): void {
    let b = (1n << 64n) - 1n;
    for (const d of this.domains) b &= d.unit.pgsizeBitmap;
    if (this.domains.length === 0) b = pageMask(this.env);
    const subPage = this.env.pageSize - 1n;
    if (b & subPage) {
      b &= ~subPage & ((1n << 64n) - 1n);
      b |= this.env.pageSize;
    }
    if (b === 0n) b = this.env.pageSize;
    this.pgsizeBitmap = b;
  }

  findGroup(id: number): { domain?: Domain; emulated: boolean } | undefined {
    for (const d of this.domains) if (d.groups.includes(id)) return { domain: d, emulated: false };
    if (this.emulatedGroups.some((g) => g.id === id)) return { emulated: true };
    return undefined;
  }

  /** Adjusts a mapping's charge and its task's locked_vm together. */
  charge(dma: VfioDma, delta: number): void {
    if (delta === 0) return;
    this.env.account(dma.pid, delta, true);
    dma.charged += delta;
    this.chargedByPid.set(dma.pid, (this.chargedByPid.get(dma.pid) ?? 0) + delta);
  }

  /**
   * vfio_remove_dma: pages still charged after the unpin belong to pins
   * nobody will release (the kernel WARNs on a non-empty pfn_list and the
   * pages stay charged): they are reported as a leak.
   */
  reportOrphanedCharge(dma: VfioDma): void {
    if (dma.charged <= 0) return;
    const p = this.env.process(dma.pid);
    p.orphaned += dma.charged;
    this.env.report(
      'ACCT_LEAK',
      `Mapping iova ${hex(dma.iova)} size ${hex(dma.size)} was removed with ${dma.charged} pages still charged to pid ${dma.pid}; they stay in locked_vm`,
      { pid: dma.pid, iova: hex(dma.iova), size: hex(dma.size), pages: dma.charged, vpfns: dma.vpfns.size },
    );
    this.chargedByPid.set(dma.pid, (this.chargedByPid.get(dma.pid) ?? 0) - dma.charged);
    dma.charged = 0;
  }
}

export function pageMask(env: ModelEnv): bigint {
  return ((1n << 64n) - 1n) & ~(env.pageSize - 1n);
}
