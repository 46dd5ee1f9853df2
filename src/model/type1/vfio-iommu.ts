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
import type { FrameSpan } from '../memory/frame-ledger.js';
import { type VfioDma, dmaCharged } from './vfio-dma.js';

/**
 * How a design charges pinned pages: an object handed in, so that shared
 * code never asks which design it serves.
 */
export interface ChargePolicy {
  /** Whether this mapping's pages are charged to locked_vm (and held to the limit) at all. */
  accounts(dma: VfioDma): boolean;
  /** Whether device memory (VM_PFNMAP) can be pinned; type1 pins it without a charge. */
  pinsPfnmap: boolean;
}

/** type1: every non-reserved page is charged; CAP_IPC_LOCK only lifts the limit. */
export const TYPE1_CHARGING: ChargePolicy = {
  accounts: () => true,
  pinsPfnmap: true,
};

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
  /** Pages charged per task pid by this container's mappings, to the task's current mm (the ledger). */
  readonly chargedByPid = new Map<number, number>();
  private nextDomainId = 0;

  constructor(
    readonly env: ModelEnv,
    readonly v2: boolean,
    readonly nesting: boolean,
    readonly policy: ChargePolicy = TYPE1_CHARGING,
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

  private ledger(pid: number, delta: number): void {
    this.chargedByPid.set(pid, (this.chargedByPid.get(pid) ?? 0) + delta);
  }

  /** Charges a mapping's pinned frames for the IOMMU (map, replay). */
  chargeDirect(dma: VfioDma, spans: readonly FrameSpan[]): void {
    if (!this.policy.accounts(dma)) return;
    const n = pagesOf(spans);
    if (this.env.applyCharge(dma, spans, 1, { direct: n })) this.ledger(dma.pid, n);
    dma.chargedDirect += n;
  }

  /** Charges one externally pinned page (a container without an IOMMU domain). */
  chargePin(dma: VfioDma, span: FrameSpan): void {
    if (!this.policy.accounts(dma)) return;
    if (this.env.applyCharge(dma, [span], 1, { pins: span.pages })) this.ledger(dma.pid, span.pages);
    dma.chargedPins += span.pages;
  }

  unchargePin(dma: VfioDma, span: FrameSpan): void {
    if (!this.policy.accounts(dma)) return;
    if (this.env.applyCharge(dma, [span], -1, { pins: span.pages })) this.ledger(dma.pid, -span.pages);
    dma.chargedPins -= span.pages;
  }

  /** Uncharges every pinned frame of an IOMMU-mapped mapping, whatever charged it (vfio_unmap_unpin). */
  unchargeAll(dma: VfioDma, spans: readonly FrameSpan[]): void {
    if (!this.policy.accounts(dma)) return;
    const n = pagesOf(spans);
    const pins = Math.min(dma.chargedPins, n);
    if (this.env.applyCharge(dma, spans, -1, { direct: n - pins, pins })) this.ledger(dma.pid, -n);
    dma.chargedDirect -= n - pins;
    dma.chargedPins -= pins;
  }

  /** Undoes a chargeDirect (a failed replay). */
  unchargeDirect(dma: VfioDma, spans: readonly FrameSpan[]): void {
    if (!this.policy.accounts(dma)) return;
    const n = pagesOf(spans);
    if (this.env.applyCharge(dma, spans, -1, { direct: n })) this.ledger(dma.pid, -n);
    dma.chargedDirect -= n;
  }

  /**
   * vfio_remove_dma: pages still charged after the unpin belong to pins
   * nobody will release (the kernel WARNs on a non-empty pfn_list and the
   * pages stay charged): they are reported as a leak.
   */
  reportOrphanedCharge(dma: VfioDma): void {
    const charged = dmaCharged(dma);
    if (charged <= 0) return;
    dma.chargedDirect = 0;
    dma.chargedPins = 0;
    // Charged to an mm that has gone (exec, exit): the charge went with it.
    const p = this.env.mmOwner(dma);
    if (!p) return;
    p.orphaned += charged;
    this.env.report(
      'ACCT_LEAK',
      `Mapping iova ${hex(dma.iova)} size ${hex(dma.size)} was removed with ${charged} pages still charged to pid ${dma.pid}; they stay in locked_vm`,
      { pid: dma.pid, iova: hex(dma.iova), size: hex(dma.size), pages: charged, vpfns: dma.vpfns.size },
    );
    this.ledger(dma.pid, -charged);
  }

  /**
   * The pid's mm has gone (exec, exit): what this container charged to it
   * went with it, and its mappings' later uncharges reach nothing.
   */
  mmGone(pid: number): void {
    this.chargedByPid.delete(pid);
  }
}

function pagesOf(spans: readonly FrameSpan[]): number {
  let n = 0;
  for (const s of spans) n += s.pages;
  return n;
}

export function pageMask(env: ModelEnv): bigint {
  return ((1n << 64n) - 1n) & ~(env.pageSize - 1n);
}
