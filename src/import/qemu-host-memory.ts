/**
 * The host memory of the imported QEMU process that the trace describes:
 * `mmap` events for the ROM and BAR ranges the import recognised, each
 * host byte described once (an alias such as isa-bios, pc.bios's last 128
 * KiB, shares its memory), and the `munmap` of a BAR mmap QEMU tears down.
 * Only these ranges: guest RAM stays undescribed (the trace format's
 * default, touched anonymous memory).
 */
import type { HostRange } from './qemu-regions.js';

type Event = Record<string, unknown>;

/** What an `mmap` event says of its memory (trace format version 2's prot and flags). */
export interface Backing {
  backing: 'anon' | 'pfnmap';
  prot: string[];
  flags: string[];
}

/** QEMU's RAM blocks (qemu_anon_ram_alloc: mmap PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS). */
export const RAM_BLOCK: Backing = { backing: 'anon', prot: ['READ', 'WRITE'], flags: ['PRIVATE', 'ANONYMOUS'] };

export class HostMemory {
  /** Host ranges already described, in the order described (few: one per ROM and BAR mmap). */
  private readonly described: HostRange[] = [];
  /** The BAR mmaps among them, by QEMU's region name (`<dev> BAR <n> mmaps[<i>]`). */
  private readonly bars = new Map<string, HostRange>();

  constructor(private readonly pid: number) {}

  /** `mmap` events for the parts of `range` no earlier event described. */
  describe(range: HostRange, how: Backing, ts: object): Event[] {
    const end = range.vaddr + range.size;
    const covering = this.described.filter((r) => r.vaddr < end && r.vaddr + r.size > range.vaddr).sort((x, y) => (x.vaddr < y.vaddr ? -1 : 1));
    const gaps: HostRange[] = [];
    let at = range.vaddr;
    for (const r of covering) {
      if (r.vaddr > at) gaps.push({ vaddr: at, size: r.vaddr - at });
      if (r.vaddr + r.size > at) at = r.vaddr + r.size;
    }
    if (at < end) gaps.push({ vaddr: at, size: end - at });
    this.described.push(...gaps);
    return gaps.map((g) => ({ type: 'mmap', pid: this.pid, vaddr: hex(g.vaddr), size: hex(g.size), backing: how.backing, prot: how.prot, flags: how.flags, ...ts }));
  }

  /** A BAR mmap, described under its region name so that its munmap can be written. */
  describeBar(region: string, range: HostRange, prot: string[], ts: object): Event[] {
    this.bars.set(region, range);
    return this.describe(range, { backing: 'pfnmap', prot, flags: ['SHARED'] }, ts);
  }

  /** `vfio_region_unmap` (vfio_subregion_unmap munmaps the BAR mmap): its `munmap`, when the trace described it. */
  unmapBar(region: string, ts: object): Event[] {
    const range = this.bars.get(region);
    if (!range) return [];
    this.bars.delete(region);
    const i = this.described.findIndex((r) => r.vaddr === range.vaddr && r.size === range.size);
    if (i >= 0) this.described.splice(i, 1);
    return [{ type: 'munmap', pid: this.pid, vaddr: hex(range.vaddr), size: hex(range.size), ...ts }];
  }
}

const hex = (v: bigint) => '0x' + v.toString(16);
