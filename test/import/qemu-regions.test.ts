import { describe, expect, it } from 'vitest';
import { SectionClassifier } from '../../src/import/qemu-regions.js';

const D = '0000:00:03.0';
const RAM = 0x7f6b3be00000n;

/** A classifier that has seen guest RAM at IOVA 0 and the e1000e's regions and mmaps. */
function e1000e(): SectionClassifier {
  const c = new SectionClassifier();
  expect(c.classify(0x0n, 0x9ffffn, RAM)).toEqual({ kind: 'ram' });
  c.regionSetup(D, 0, 0x7n, 0x20000n);
  c.regionSetup(D, 2, 0x3n, 0x20n);
  c.regionSetup(D, 3, 0xfn, 0x4000n);
  c.regionSetup(D, 4, 0x0n, 0x0n);
  expect(c.regionMmap(`${D} BAR 0 mmaps[0]`, 0x0n, 0x1ffffn)).toBe(true);
  expect(c.regionMmap(`${D} BAR 3 mmaps[0]`, 0x0n, 0x3fffn)).toBe(true);
  return c;
}

describe('SectionClassifier: the PC firmware ROMs', () => {
  it('SectionClassifier takes the q35/pc windows of pc.rom, isa-bios and pc.bios as ROMs', () => {
    const c = e1000e();
    expect(c.classify(0xc0000n, 0xdffffn, 0x7f6c7be00000n)).toMatchObject({ kind: 'rom', rom: 'pc.rom' });
    expect(c.classify(0xe0000n, 0xfffffn, 0x7f6c7c020000n)).toMatchObject({ kind: 'rom', rom: 'isa-bios' });
    expect(c.classify(0xfffc0000n, 0xffffffffn, 0x7f6c7c000000n)).toMatchObject({ kind: 'rom', rom: 'pc.bios' });
    // OVMF as -bios: 2 MiB below 4 GiB.
    expect(c.classify(0xffe00000n, 0xffffffffn, 0x7f6c70000000n)).toMatchObject({ kind: 'rom', rom: 'pc.bios' });
  });

  it('SectionClassifier takes a section of the ROM windows whose host address continues guest RAM as RAM (PAM shadowing)', () => {
    const c = e1000e();
    expect(c.classify(0xc0000n, 0xfffffn, RAM + 0xc0000n)).toEqual({ kind: 'ram' });
    expect(c.classify(0xe0000n, 0xeffffn, RAM + 0xe0000n)).toEqual({ kind: 'ram' });
  });

  it('SectionClassifier takes guest RAM and sections outside the windows as RAM', () => {
    const c = e1000e();
    expect(c.classify(0x100000n, 0x3fffffffn, RAM + 0x100000n)).toEqual({ kind: 'ram' });
    expect(c.classify(0xfd000000n, 0xfdffffffn, 0x7f6b2ae00000n)).toEqual({ kind: 'ram' });
    // Not ending at 4 GiB, or reaching below 0xff000000: not pc.bios.
    expect(c.classify(0xfffc0000n, 0xfffdffffn, 0x7f6c7c000000n)).toEqual({ kind: 'ram' });
    expect(c.classify(0xfe000000n, 0xffffffffn, 0x7f6c7c000000n)).toEqual({ kind: 'ram' });
  });

  it('SectionClassifier uses a region name or read-only flag on the line first', () => {
    const c = e1000e();
    expect(c.classify(0x100000000n, 0x10001ffffn, 0x7f00n, { name: 'pc.rom' })).toMatchObject({ kind: 'rom', rom: 'pc.rom', why: 'the region name pc.rom on the line' });
    expect(c.classify(0x100000000n, 0x10001ffffn, 0x7f00n, { readonly: true })).toMatchObject({ kind: 'rom', why: 'the read-only flag on the line' });
  });
});

describe('SectionClassifier: BARs the guest programmed', () => {
  it('SectionClassifier takes a section inside an enabled BAR window as that BAR, with the whole mmap as host range', () => {
    const c = e1000e();
    // Before the guest writes BAR 0, nothing is a BAR (its register reads 0).
    expect(c.classify(0xfea00000n, 0xfea1ffffn, 0x7f6c80a00000n)).toEqual({ kind: 'ram' });
    c.configWrite(D, 0x10, 0xfea00000, 4);
    c.configWrite(D, 0x1c, 0xfea40000, 4);
    expect(c.classify(0xfea00000n, 0xfea1ffffn, 0x7f6c80a00000n)).toMatchObject({ kind: 'bar', dev: D, bar: 0, mmap: { vaddr: 0x7f6c80a00000n, size: 0x20000n }, prot: ['READ', 'WRITE'], region: `${D} BAR 0 mmaps[0]` });
    // A piece of BAR 3 beside the MSI-X table: the host range is BAR 3's whole mmap.
    expect(c.classify(0xfea41000n, 0xfea41fffn, 0x7f6c80a45000n)).toMatchObject({ kind: 'bar', bar: 3, mmap: { vaddr: 0x7f6c80a44000n, size: 0x4000n } });
    // Outside every window.
    expect(c.classify(0xfea20000n, 0xfea3ffffn, 0x7f6c80a20000n)).toEqual({ kind: 'ram' });
  });

  it('SectionClassifier computes the address as QEMU does: the size masks the low bits, the sizing write moves the window', () => {
    const c = e1000e();
    c.configWrite(D, 0x10, 0xffffffff, 4);
    expect(c.classify(0xfffe0000n, 0xfffeffffn, 0x7f6c80a00000n)).toMatchObject({ kind: 'bar', bar: 0 });
    c.configWrite(D, 0x10, 0xfea0, 2);
    c.configWrite(D, 0x12, 0xfea0, 2);
    expect(c.classify(0xfea00000n, 0xfea0ffffn, 0x7f6c80a00000n)).toMatchObject({ kind: 'bar', bar: 0 });
  });

  it('SectionClassifier combines a 64-bit BAR from its two registers when config reads show the 64-bit type', () => {
    const c = new SectionClassifier();
    c.regionSetup(D, 2, 0x7n, 0x100000n);
    c.regionSetup(D, 3, 0x0n, 0x0n);
    c.configRead(D, 0x18, 4, 0xc);
    c.configWrite(D, 0x18, 0x0, 4);
    c.configWrite(D, 0x1c, 0x8, 4);
    expect(c.classify(0x800000000n, 0x8000fffffn, 0x7f0000000000n)).toMatchObject({ kind: 'bar', bar: 2, mmap: { vaddr: 0x7f0000000000n, size: 0x100000n } });
    // Without the 64-bit type the address would be 0: never a window.
    const d = new SectionClassifier();
    d.regionSetup(D, 2, 0x7n, 0x100000n);
    d.configWrite(D, 0x18, 0x0, 4);
    d.configWrite(D, 0x1c, 0x8, 4);
    expect(d.classify(0x800000000n, 0x8000fffffn, 0x7f0000000000n)).toEqual({ kind: 'ram' });
  });

  it('SectionClassifier ignores I/O BARs and regions that cannot be mmapped', () => {
    const c = e1000e();
    c.configRead(D, 0x18, 4, 0x1);
    c.configWrite(D, 0x18, 0xc041, 4);
    expect(c.classify(0xc000n, 0xc01fn, 0x7f00n)).toEqual({ kind: 'ram' });
  });

  it('SectionClassifier recognises a BAR mmap again by its host range after the guest moved the BAR', () => {
    const c = e1000e();
    c.configWrite(D, 0x10, 0xfea00000, 4);
    expect(c.classify(0xfea00000n, 0xfea1ffffn, 0x7f6c80a00000n)).toMatchObject({ kind: 'bar', bar: 0 });
    c.configWrite(D, 0x10, 0x0, 4);
    expect(c.classify(0xfe000000n, 0xfe01ffffn, 0x7f6c80a00000n)).toMatchObject({ kind: 'bar', bar: 0 });
  });

  it('SectionClassifier.regionMmap refuses a name that is no BAR region set up before', () => {
    const c = e1000e();
    expect(c.regionMmap(`${D} BAR 1 mmaps[0]`, 0x0n, 0x1ffffn)).toBe(false);
    expect(c.regionMmap('vga.vram', 0x0n, 0xffffffn)).toBe(false);
  });
});
