import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isContinuation, parseLine, regionHints } from '../../src/import/qemu-log-line.js';
import { QemuTraceConverter } from '../../src/import/qemu-trace.js';

const D = '0000:00:03.0';

describe('parseLine: QEMU 7.2 formats read field by field', () => {
  it('parseLine reads vfio_pci_write_config and vfio_pci_read_config in signature order', () => {
    expect(parseLine(`vfio_pci_write_config  (${D}, @0x10, 0xfea00000, len=0x4)`)).toEqual({ name: 'vfio_pci_write_config', args: [D, '0x10', '0xfea00000', '0x4'] });
    expect(parseLine(`vfio_pci_read_config  (${D}, @0x10, len=0x4) 0xfffe0000`)).toEqual({ name: 'vfio_pci_read_config', args: [D, '0x10', '0x4', '0xfffe0000'] });
  });

  it('parseLine reads vfio_region_setup with the region name in quotes', () => {
    expect(parseLine(`vfio_region_setup Device ${D}, region 3 "${D} BAR 3", flags: 0xf, offset: 0x30000000000, size: 0x4000`)).toEqual({
      name: 'vfio_region_setup',
      args: [D, '3', `${D} BAR 3`, '0xf', '0x30000000000', '0x4000'],
    });
  });

  it('parseLine reads vfio_region_mmap and vfio_region_unmap names with spaces', () => {
    expect(parseLine(`vfio_region_mmap Region ${D} BAR 0 mmaps[0] [0x0 - 0x1ffff]`)!.args).toEqual([`${D} BAR 0 mmaps[0]`, '0x0', '0x1ffff']);
    expect(parseLine(`vfio_region_unmap Region ${D} BAR 0 mmaps[0] unmap [0x0 - 0x1ffff]`)!.args).toEqual([`${D} BAR 0 mmaps[0]`, '0x0', '0x1ffff']);
  });

  it('parseLine reads vfio_listener_region_add_no_dma_map', () => {
    expect(parseLine(`vfio_listener_region_add_no_dma_map Region "${D} BAR 3 mmaps[0]" 0xfea42008 size=0xff8 is not aligned to 0x1000 and cannot be mapped for DMA`)!.args).toEqual([
      `${D} BAR 3 mmaps[0]`,
      '0xfea42008',
      '0xff8',
      '0x1000',
    ]);
  });

  it('parseLine reads simpletrace.py string arguments that hold spaces', () => {
    expect(parseLine(`vfio_region_mmap 2.000 pid=4711 name=${D} BAR 0 mmaps[0] offset=0x0 end=0x1ffff`)!.args).toEqual([`${D} BAR 0 mmaps[0]`, '0x0', '0x1ffff']);
  });

  it('parseLine reads the 7.2 skip events with the TID prefix', () => {
    expect(parseLine('48213@1733218512.113519:vfio_listener_region_add_skip SKIPPING region_add 0xa0000 - 0xbffff')).toEqual({
      name: 'vfio_listener_region_add_skip',
      args: ['0xa0000', '0xbffff'],
      ts: 1733218512113519000,
    });
  });
});

describe('parseLine: multi-line events', () => {
  it('parseLine marks the first line of 7.2 two-line events (vfio_pci_load_rom, vfio_populate_device_config) as followed by one more', () => {
    expect(parseLine(`vfio_pci_load_rom Device ${D} ROM:`)!.more).toBe(1);
    expect(parseLine(`1234@1.000001:vfio_populate_device_config Device ${D} config:`)!.more).toBe(1);
    // QEMU 8 prints them on one line.
    expect(parseLine(`vfio_pci_load_rom Device '${D}' ROM: size: 0x40000, offset: 0x60000000000, flags: 0x1`)!.more).toBeUndefined();
  });

  it('isContinuation is true only for a line starting with white space', () => {
    expect(isContinuation('  size: 0x40000, offset: 0x60000000000, flags: 0x1')).toBe(true);
    expect(isContinuation('vfio_rom_read  (0000:00:03.0, 0x0, 0x2) = 0xaa55')).toBe(false);
    expect(isContinuation('   ')).toBe(false);
  });

  it('QemuTraceConverter attaches continuation lines to their event: none is counted unreadable', () => {
    const c = new QemuTraceConverter();
    for (const l of [`vfio_pci_load_rom Device ${D} ROM:`, '  size: 0x40000, offset: 0x60000000000, flags: 0x1', `vfio_populate_device_config Device ${D} config:`, '  size: 0x1000, offset: 0x70000000000, flags: 0x3']) c.line(l);
    expect(c.stats).toMatchObject({ lines: 4, continued: 2, unparsed: 0, unused: {} });
  });

  it('QemuTraceConverter attaches a continuation after an event not known to be multi-line, and reports it', () => {
    const c = new QemuTraceConverter();
    for (const l of [`vfio_msix_early_setup ${D} PCI MSI-X CAP @0xa0, BAR 3, offset 0x0, entries 5`, '  something more']) c.line(l);
    expect(c.stats.unparsed).toBe(0);
    expect(c.stats.unused).toEqual({ vfio_msix_early_setup: 1, 'vfio_msix_early_setup continuation line (not a known multi-line event)': 1 });
  });

  it('QemuTraceConverter counts an indented line after an error line as not a trace line', () => {
    const c = new QemuTraceConverter();
    for (const l of ['qemu-system-x86_64: warning: host doesn\'t support requested feature', '  size: 0x1000']) c.line(l);
    expect(c.stats.unparsed).toBe(2);
  });
});

describe('regionHints', () => {
  it('regionHints finds nothing on a 7.2 line, and a name or read-only word when a QEMU prints one', () => {
    expect(regionHints('vfio_listener_region_add_ram region_add [ram] 0xc0000 - 0xdffff [0x7f10c0200000]')).toEqual({});
    expect(regionHints('vfio_listener_region_add_ram region_add [ram] "pc.rom" 0xc0000 - 0xdffff [0x7f10c0200000]')).toEqual({ name: 'pc.rom' });
    expect(regionHints('vfio_listener_region_add_ram region_add [ram] 0xc0000 - 0xdffff [0x7f10c0200000] ro')).toEqual({ readonly: true });
  });
});

/**
 * Every vfio_ event of QEMU 7.2.22 as Debian 12 builds it: the format
 * strings were read out of its qemu-system-x86_64 (the log backend's
 * `"%d@%zu.%06zu:<name> " fmt "\n"` strings), one per line of the fixture.
 */
const FORMATS = readFileSync(new URL('./fixtures/qemu-7.2.22-vfio-formats.jsonl', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { name: string; format: string });

/** A format string filled as printf would: a device name for %s, numbers for the rest. */
function render(format: string): string {
  return format.replace(/%(0?\d*)(l?)([sdxucp])/g, (_m, _w: string, _l: string, conv: string) => ({ s: D, d: '7', u: '7', x: '1f', c: 'A', p: '0x7f6c80a00000' })[conv]!);
}

describe('QEMU 7.2.22 vfio_ formats, every one', () => {
  it('the fixture holds all 139 events of 7.2.22, two of them on two lines', () => {
    expect(FORMATS).toHaveLength(139);
    expect(FORMATS.filter((f) => f.format.slice(0, -1).includes('\n')).map((f) => f.name)).toEqual(['vfio_pci_load_rom', 'vfio_populate_device_config']);
  });

  it.each(['', '4711@1733218512.113402:'])('QemuTraceConverter reads every 7.2.22 event with prefix %j: no line unreadable, continuations attached', (prefix) => {
    const c = new QemuTraceConverter();
    for (const f of FORMATS) {
      const [first, ...rest] = `${f.name} ${render(f.format)}`.replace(/\n$/, '').split('\n');
      c.line(prefix + first);
      for (const l of rest) c.line(l);
    }
    c.end();
    expect(c.stats.unparsed).toBe(0);
    expect(c.stats.continued).toBe(2);
    expect(Object.keys(c.stats.unused).filter((k) => k.includes('continuation') || k.includes('unreadable'))).toEqual([]);
  });

  it('parseLine reads the fields of the 7.2.22 events the import uses, as their format strings print them', () => {
    const fields = (name: string) => parseLine(`${name} ${render(FORMATS.find((f) => f.name === name)!.format).trimEnd()}`)!.args;
    expect(fields('vfio_listener_region_add_ram')).toEqual(['0x1f', '0x1f', '0x7f6c80a00000']);
    expect(fields('vfio_listener_region_del')).toEqual(['0x1f', '0x1f']);
    expect(fields('vfio_listener_region_add_skip')).toEqual(['0x1f', '0x1f']);
    expect(fields('vfio_realize')).toEqual([D, '7']);
    expect(fields('vfio_pci_write_config')).toEqual([D, '0x1f', '0x1f', '0x1f']);
    expect(fields('vfio_pci_read_config')).toEqual([D, '0x1f', '0x1f', '0x1f']);
    expect(fields('vfio_region_setup')).toEqual([D, '7', D, '0x1f', '0x1f', '0x1f']);
    expect(fields('vfio_region_mmap')).toEqual([D, '0x1f', '0x1f']);
    expect(fields('vfio_region_unmap')).toEqual([D, '0x1f', '0x1f']);
    expect(fields('vfio_listener_region_add_no_dma_map')).toEqual([D, '0x1f', '0x1f', '0x1f']);
  });
});
