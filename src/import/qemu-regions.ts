/**
 * What a guest-RAM section QEMU maps for DMA is, as well as its trace log
 * can tell: guest RAM, one of the PC firmware ROMs (mapped READ-only), or
 * an mmapped BAR of an assigned device (RAM-device memory, VM_PFNMAP in
 * the kernel). QEMU 7.2's `region_add [ram]` line gives only the IOVA range
 * and the host address (hw/vfio/common.c vfio_listener_region_add), so the
 * kind is inferred from what else the log says:
 *
 * - ROMs: q35 and pc place `pc.rom` at 0xc0000-0xdffff, the `isa-bios`
 *   alias at 0xe0000-0xfffff (the last 128 KiB of the BIOS) and `pc.bios`
 *   ending at 0xffffffff (hw/i386/x86.c x86_bios_rom_init, pc_memory_init),
 *   all read-only with a PCI bus (memory_region_set_readonly), so QEMU maps
 *   them with VFIO_DMA_MAP_FLAG_READ only (vfio_dma_map's `readonly`). A
 *   section in 0xc0000-0xfffff whose host address continues guest RAM's
 *   (the section at IOVA 0) is RAM shadowed there by the PAM registers, not
 *   a ROM.
 * - BARs: the guest programs a BAR's address through config writes
 *   (`vfio_pci_write_config`), the BAR's size is its region's
 *   (`vfio_region_setup`), and its mmapped parts are `vfio_region_mmap`'s;
 *   a section inside an enabled BAR's window is that BAR's mmap
 *   (vfio_region_mmap's ram_device subregion), and its host range is the
 *   whole mmap the section lies in.
 * - A region name or a read-only flag on the line (later QEMUs may print
 *   them) decides first.
 */

const FIXED_ROMS = { 'pc.rom': [0xc0000n, 0xdffffn], 'isa-bios': [0xe0000n, 0xfffffn] } as const;
/** pc.bios ends at 4 GiB; its size is the BIOS file's (256 KiB for SeaBIOS, up to 16 MiB). */
const BIOS_END = 0xffffffffn;
const BIOS_LOWEST = 0xff000000n;
/** PCI config space: the BAR registers (PCI_BASE_ADDRESS_0..5) and the command register. */
const BAR0_REG = 0x10;
const BAR_COUNT = 6;
/** VFIO_REGION_INFO_FLAG_READ / _WRITE / _MMAP. */
const REGION_READ = 0x1n;
const REGION_WRITE = 0x2n;
const REGION_MMAP = 0x4n;
/** PCI_BASE_ADDRESS_SPACE_IO, PCI_BASE_ADDRESS_MEM_TYPE_64. */
const BAR_IO = 0x1;
const BAR_MEM_64 = 0x4;

export type RomName = 'pc.bios' | 'pc.rom' | 'isa-bios';

/** A host range QEMU mmapped: the memory a DMA map of a section pins. */
export interface HostRange {
  vaddr: bigint;
  size: bigint;
}

export type SectionKind =
  | { kind: 'ram' }
  | { kind: 'rom'; rom: RomName | string; why: string }
  | { kind: 'bar'; dev: string; bar: number; mmap: HostRange; prot: string[]; region: string; why: string };

interface DeviceRegion {
  /** Bytes. */
  size: bigint;
  flags: bigint;
  /** Its mmapped parts: offsets within the region, `start + size`, by the mmap's region name. */
  mmaps: { name: string; offset: bigint; size: bigint }[];
}

interface Device {
  regions: Map<number, DeviceRegion>;
  /** The BAR registers as the guest wrote them (PCI config 0x10..0x27), byte by byte. */
  bars: Uint8Array;
  /** Whether a write reached each BAR's registers. */
  written: boolean[];
  /** BAR type bits read back from config space (0 until read). */
  typeBits: number[];
}

export interface RegionHints {
  name?: string;
  readonly?: boolean;
}

/** The sections and device regions a log has shown so far; pure state, fed line by line. */
export class SectionClassifier {
  private readonly devices = new Map<string, Device>();
  /** Host address of guest RAM at IOVA 0 (pc.ram's start), once seen. */
  private lowRam: bigint | undefined;
  /** Host ranges already known to be BAR mmaps (a BAR enabled again maps the same mmap). */
  private readonly barMmaps: { range: HostRange; kind: Extract<SectionKind, { kind: 'bar' }> }[] = [];

  regionSetup(dev: string, index: number, flags: bigint, size: bigint): void {
    this.device(dev).regions.set(index, { size, flags, mmaps: [] });
  }

  /** `Region <dev> BAR <n> mmaps[<i>] [start - end]` (QEMU 8 fixtures omit ` mmaps[i]`). */
  regionMmap(name: string, start: bigint, end: bigint): boolean {
    const m = /^(\S+) BAR (\d+)(?: mmaps\[\d+\])?$/.exec(name);
    if (!m) return false;
    const region = this.device(m[1]!).regions.get(Number(m[2]));
    if (!region) return false;
    region.mmaps.push({ name, offset: start, size: end - start + 1n });
    return true;
  }

  configWrite(dev: string, addr: number, value: number, len: number): void {
    const d = this.device(dev);
    for (let i = 0; i < len; i++) {
      const reg = addr + i - BAR0_REG;
      if (reg < 0 || reg >= BAR_COUNT * 4) continue;
      d.bars[reg] = (value >>> (8 * i)) & 0xff;
      d.written[reg >> 2] = true;
    }
  }

  configRead(dev: string, addr: number, len: number, value: number): void {
    const reg = addr - BAR0_REG;
    if (reg < 0 || reg >= BAR_COUNT * 4 || reg % 4 !== 0 || len < 1) return;
    this.device(dev).typeBits[reg >> 2] = value & 0xf;
  }

  /** The kind of the section [iova, end] (inclusive, as QEMU prints it) at host address `vaddr`. */
  classify(iova: bigint, end: bigint, vaddr: bigint, hints: RegionHints = {}): SectionKind {
    const size = end - iova + 1n;
    if (iova === 0n) this.lowRam = vaddr;
    if (hints.name !== undefined && /^(pc\.bios|pc\.rom|isa-bios)$/.test(hints.name)) return { kind: 'rom', rom: hints.name, why: `the region name ${hints.name} on the line` };
    if (hints.readonly) return { kind: 'rom', rom: hints.name ?? 'read-only memory', why: 'the read-only flag on the line' };
    const rom = this.fixedRom(iova, end, vaddr);
    if (rom) return rom;
    const known = this.barMmaps.find((b) => vaddr >= b.range.vaddr && vaddr + size <= b.range.vaddr + b.range.size);
    if (known) return known.kind;
    const bar = this.barWindow(iova, end, vaddr);
    if (bar) this.barMmaps.push({ range: bar.mmap, kind: bar });
    return bar ?? { kind: 'ram' };
  }

  /** The fixed PC ROM windows, unless the host address is guest RAM's (PAM shadowing). */
  private fixedRom(iova: bigint, end: bigint, vaddr: bigint): SectionKind | undefined {
    const shadowed = this.lowRam !== undefined && vaddr === this.lowRam + iova;
    for (const [rom, [lo, hi]] of Object.entries(FIXED_ROMS)) {
      if (iova >= lo && end <= hi) {
        if (shadowed) return undefined;
        return { kind: 'rom', rom, why: `in ${rom}'s window 0x${lo.toString(16)}-0x${hi.toString(16)} of q35/pc, host address not guest RAM's` };
      }
    }
    if (end === BIOS_END && iova >= BIOS_LOWEST && !shadowed) return { kind: 'rom', rom: 'pc.bios', why: 'ends at 0xffffffff, where q35/pc put pc.bios' };
    return undefined;
  }

  /** A section inside a BAR window the guest programmed; the host range is the BAR mmap it lies in. */
  private barWindow(iova: bigint, end: bigint, vaddr: bigint): Extract<SectionKind, { kind: 'bar' }> | undefined {
    for (const [dev, d] of this.devices) {
      for (let n = 0; n < BAR_COUNT; n++) {
        const region = d.regions.get(n);
        if (!region || region.size === 0n || !d.written[n] || (d.typeBits[n]! & BAR_IO) !== 0) continue;
        if ((region.flags & REGION_MMAP) === 0n && region.mmaps.length === 0) continue;
        const base = this.barAddress(d, n, region.size);
        if (base === 0n || iova < base || end >= base + region.size) continue;
        const offset = iova - base;
        const mmap = region.mmaps.find((m) => offset >= m.offset && end - base < m.offset + m.size);
        const host = mmap ? { vaddr: vaddr - (offset - mmap.offset), size: mmap.size } : { vaddr, size: end - iova + 1n };
        // vfio_region_mmap: PROT_READ and PROT_WRITE as the region's flags allow.
        const prot = [...((region.flags & REGION_READ) !== 0n ? ['READ'] : []), ...((region.flags & REGION_WRITE) !== 0n ? ['WRITE'] : [])];
        const name = mmap?.name ?? `${dev} BAR ${n}`;
        return { kind: 'bar', dev, bar: n, mmap: host, prot, region: name, why: `in ${dev} BAR ${n} at 0x${base.toString(16)} (size 0x${region.size.toString(16)}) as the guest programmed it` };
      }
    }
    return undefined;
  }

  /** BAR n's guest address as pci_bar_address computes it: the written bits the size leaves writable. */
  private barAddress(d: Device, n: number, size: bigint): bigint {
    const dword = (i: number) => BigInt(d.bars[i * 4]! | (d.bars[i * 4 + 1]! << 8) | (d.bars[i * 4 + 2]! << 16)) + (BigInt(d.bars[i * 4 + 3]!) << 24n);
    let addr = dword(n) & ~0xfn;
    if ((d.typeBits[n]! & 0x6) === BAR_MEM_64 && n + 1 < BAR_COUNT) addr |= dword(n + 1) << 32n;
    return addr & ~(size - 1n);
  }

  private device(dev: string): Device {
    let d = this.devices.get(dev);
    if (!d) {
      d = { regions: new Map(), bars: new Uint8Array(BAR_COUNT * 4), written: new Array<boolean>(BAR_COUNT).fill(false), typeBits: new Array<number>(BAR_COUNT).fill(0) };
      this.devices.set(dev, d);
    }
    return d;
  }
}
