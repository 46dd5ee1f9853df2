import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importUnknown } from '../../src/import/qemu-header.js';
import { QemuTraceConverter, parseLine } from '../../src/import/qemu-trace.js';
import { BACKENDS } from '../../src/model/backends/index.js';
import { replayFiles } from '../../src/replay/replay-files.js';

const root = new URL('../..', import.meta.url).pathname;
const bin = join(root, 'bin/pinledger.js');

function importLog(name: string, ...options: string[]) {
  const out = join(mkdtempSync(join(tmpdir(), 'pinledger-import-')), 'out.jsonl');
  const r = spawnSync(process.execPath, [bin, 'import', 'qemu-trace', join(root, 'traces/samples/qemu', name), '-o', out, ...options], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return { out, stdout: r.stdout, stderr: r.stderr, lines: readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>) };
}

/** `pinledger replay FILE --json --outcomes --backend upstream`: the exit status and the upstream document. */
function replayCli(file: string, ...options: string[]) {
  const r = spawnSync(process.execPath, [bin, 'replay', file, '--json', '--outcomes', '--backend', 'upstream', ...options], { encoding: 'utf8' });
  expect(r.stdout, r.stderr).not.toBe('');
  return { code: r.status, doc: JSON.parse(r.stdout).backends.upstream as { findings: { code: string; seq: number; details: Record<string, unknown> }[]; outcomes: { seq: number; ret: number }[]; peak_locked_vm: Record<string, number>; locked_vm: Record<string, number> } };
}

/** The converter fed `lines`: every event, and what it counted as not used. */
function convert(lines: string[]) {
  const c = new QemuTraceConverter();
  const events = [...lines.flatMap((l) => c.line(l)), ...c.end()];
  return { events, stats: c.stats, maps: events.filter((e) => e.cmd === 'VFIO_IOMMU_MAP_DMA') as Record<string, any>[] };
}

const ATTACH = 'vfio_realize  (0000:01:00.0) group 12';
const RAM = 'vfio_listener_region_add_ram region_add [ram] 0x100000 - 0x7fffffff [0x7f1000100000]';
const ROM = 'vfio_listener_region_add_ram region_add [ram] 0xfffc0000 - 0xffffffff [0x7f10c0000000]';
const FINAL = 'qemu-system-x86_64: -device vfio-pci,host=0000:01:00.0: vfio 0000:01:00.0: failed to setup container for group 12: memory listener initialization failed: Region pc.ram: vfio_dma_map(0x55d0c8e0a2c0, 0x100000, 0x7ff00000, 0x7f1000100000) = -12 (Cannot allocate memory)';

async function replay(file: string) {
  const [t] = await replayFiles([file], new Map([['upstream', BACKENDS.upstream!]]), { keepOutcomes: true });
  return t!.replayers.get('upstream')!;
}

describe('parseLine: the three log prefixes and simpletrace', () => {
  it('reads the event name, its numbers and names, and the time', () => {
    expect(parseLine('vfio_listener_region_add_ram region_add [ram] 0x0 - 0x9ffff [0x7f8a3c000000]')).toEqual({ name: 'vfio_listener_region_add_ram', args: ['0x0', '0x9ffff', '0x7f8a3c000000'] });
    expect(parseLine('30811@1694372712.000112:vfio_attach_device  (0000:02:00.0) group 13')).toEqual({ name: 'vfio_attach_device', args: ['0000:02:00.0', '13'], ts: 1694372712000112000 });
    expect(parseLine('2025-09-10T18:05:12.000110Z vfio_iommu_map_notify iommu UNMAP @ 0x1000 - 0x1fff')).toEqual({ name: 'vfio_iommu_map_notify', args: ['UNMAP', '0x1000', '0x1fff'], ts: '2025-09-10T18:05:12.000110Z' });
    expect(parseLine('vfio_listener_region_del 1.000 pid=4711 iova_start=0x0 iova_end=0x9ffff')).toEqual({ name: 'vfio_listener_region_del', args: ['0x0', '0x9ffff'] });
    expect(parseLine('qemu-system-x86_64: warning: something')).toBeUndefined();
  });
});

describe('pinledger import qemu-trace', () => {
  it('turns a QEMU 8 log into a trace that maps the guest around the PCI hole and tears down', async () => {
    const { out, lines, stderr } = importLog('qemu-8-log.log');
    const h = lines[0]!;
    expect(h).toMatchObject({ type: 'header', trace_id: 'qemu/qemu-8-log.log', import: { from: 'qemu-trace' }, topology: { groups: [{ id: 12, devices: ['0000:01:00.0'] }] } });
    expect((h.import.unknown as string[]).some((u) => u.startsWith('ret of maps'))).toBe(true);
    const maps = lines.filter((l) => l.cmd === 'VFIO_IOMMU_MAP_DMA').map((l) => [l.arg.iova, l.arg.size, l.arg.vaddr]);
    expect(maps).toEqual([
      ['0x0', '0xa0000', '0x7f8a3c000000'],
      ['0xc0000', '0x20000', '0x7f8b3c200000'],
      ['0x100000', '0x7ff00000', '0x7f8a3c100000'],
      ['0x100000000', '0x80000000', '0x7f8abc000000'],
    ]);
    expect(lines.filter((l) => l.cmd === 'VFIO_IOMMU_UNMAP_DMA')).toHaveLength(4);
    // pc.rom's window: READ-only, over private anonymous memory described just before (format version 2).
    expect(h.version).toBe(2);
    const rom = lines.findIndex((l) => l.cmd === 'VFIO_IOMMU_MAP_DMA' && l.arg.iova === '0xc0000');
    expect(lines[rom]!.arg.flags).toEqual(['READ']);
    expect(lines[rom - 1]).toEqual({ type: 'mmap', seq: lines[rom]!.seq - 1, pid: 1, vaddr: '0x7f8b3c200000', size: '0x20000', backing: 'anon', prot: ['READ', 'WRITE'], flags: ['PRIVATE', 'ANONYMOUS'] });
    expect(stderr).toContain('not used: vfio_msix_early_setup 1, vfio_msix_vector_do_use 1');
    const r = await replay(out);
    expect(r.lockedVm().peak.get(1)).toBe(160 + 32 + 524032 + 524288);
    expect(r.lockedVm().current.get(1)).toBe(0);
    expect(r.findings).toEqual([]);
    expect(r.outcomes.filter((o) => o.ret !== 0 && o.seq > 1).map((o) => o.ret)).toEqual([3, 4]);
  });

  it('turns the ENOMEM error line of a failed map into its observed result', async () => {
    const { out, lines, stderr } = importLog('qemu-10-iso.log');
    const failed = lines.find((l) => l.cmd === 'VFIO_IOMMU_MAP_DMA' && l.arg.iova === '0x100000000')!;
    expect(failed).toMatchObject({ ret: -12, ts: '2025-09-10T18:05:12.030000Z', arg: { size: '0x380000000' } });
    // The final error names the same map again: a confirmation, not a line left unused.
    expect(lines.filter((l) => l.ret !== undefined && l.ret < 0)).toHaveLength(1);
    expect(stderr).toBe('');
    const r = await replay(out);
    expect(lines[0]!.version).toBe(1);
    // The model, with no limit known, maps it: the capture saw ENOMEM.
    expect(r.findings.map((f) => [f.code, f.seq, f.details.observed, f.details.model])).toEqual([['RET_MISMATCH', failed.seq, -12, 0]]);
    expect(r.memlockRequired().get(1)!.bytes).toBe(BigInt(160 + 524032 + 3670016) * 4096n);
  });

  it('maps vIOMMU notifications with synthetic host addresses, from a TID-prefixed log with the old event names', async () => {
    const { out, lines, stderr } = importLog('qemu-tid-viommu.log');
    expect(lines.filter((l) => l.type === 'ioctl' && l.cmd.endsWith('MAP_DMA')).map((l) => [l.cmd === 'VFIO_IOMMU_MAP_DMA' ? 'map' : 'unmap', l.arg.iova, l.arg.size])).toEqual([
      ['map', '0x1000000', '0x2000'],
      ['map', '0x1002000', '0x1000'],
      ['unmap', '0x1000000', '0x2000'],
      ['map', '0x1100000', '0x100000'],
      ['unmap', '0x1100000', '0x100000'],
      ['unmap', '0x1002000', '0x1000'],
    ]);
    expect(stderr).toContain('not trace lines: 1');
    const r = await replay(out);
    expect(r.lockedVm().peak.get(1)).toBe(257);
    expect(r.findings).toEqual([]);
  });

  it('reads simpletrace.py output', async () => {
    const { out } = importLog('qemu-simpletrace.txt');
    const r = await replay(out);
    expect(r.lockedVm().peak.get(1)).toBe(160 + 261888);
    expect(r.lockedVm().current.get(1)).toBe(0);
  });
});

describe('QemuTraceConverter: failed maps', () => {
  it('QemuTraceConverter gives VFIO_MAP_DMA failed the errno of its strerror text, on the map attempt before it', () => {
    const texts: [string, number][] = [
      ['Cannot allocate memory', -12],
      ['Invalid argument', -22],
      ['No space left on device', -28],
      ['File exists', -17],
      ['Bad address', -14],
      ['Operation not permitted', -1],
      ['Device or resource busy', -16],
    ];
    for (const [text, ret] of texts) {
      const { maps, stats } = convert([ATTACH, RAM, `VFIO_MAP_DMA failed: ${text}`]);
      expect(maps.map((m) => m.ret), text).toEqual([ret]);
      expect(stats.refused).toBe(1);
      expect(stats.unused).toEqual({});
    }
  });

  it('QemuTraceConverter reads VFIO_MAP_DMA failed behind any prefix error_report puts', () => {
    for (const line of [
      'VFIO_MAP_DMA failed: Cannot allocate memory',
      'qemu-system-x86_64: VFIO_MAP_DMA failed: Cannot allocate memory',
      '2024-12-03T09:35:12.131877Z qemu-system-x86_64: -device vfio-pci,host=0000:01:00.0: VFIO_MAP_DMA failed: Cannot allocate memory',
      '2024-12-03T09:35:12.131877Z qemu-system-x86_64: VFIO_MAP_DMA failed: Cannot allocate memory\r',
    ]) {
      expect(convert([ATTACH, RAM, line]).maps.map((m) => m.ret), line).toEqual([-12]);
    }
  });

  it('QemuTraceConverter reports a strerror text it does not know and leaves the map without a result', () => {
    const { maps, stats } = convert([ATTACH, RAM, 'qemu-system-x86_64: VFIO_MAP_DMA failed: Resource temporarily unavailable']);
    expect(maps[0]!.ret).toBeUndefined();
    expect(stats.refused).toBe(0);
    expect(stats.unused).toEqual({ 'VFIO_MAP_DMA failed: Resource temporarily unavailable': 1 });
  });

  it('QemuTraceConverter takes the final vfio_dma_map error naming the refused map as a confirmation', () => {
    const { maps, stats } = convert([ATTACH, RAM, 'VFIO_MAP_DMA failed: Cannot allocate memory', ROM, 'vfio_listener_region_del region_del 0x100000 - 0x7fffffff', FINAL]);
    expect(maps.map((m) => [m.arg.iova, m.ret])).toEqual([
      ['0x100000', -12],
      ['0xfffc0000', undefined],
    ]);
    expect(stats.refused).toBe(1);
    expect(stats.unused).toEqual({});
  });

  it('QemuTraceConverter reports a final vfio_dma_map error whose errno differs, and keeps the first', () => {
    const { maps, stats } = convert([ATTACH, RAM, 'VFIO_MAP_DMA failed: Cannot allocate memory', ROM, FINAL.replace('= -12 (Cannot allocate memory)', '= -22 (Invalid argument)')]);
    expect(maps[0]!.ret).toBe(-12);
    expect(stats.unused).toEqual({ 'vfio_dma_map error (differs from the failure recorded)': 1 });
  });

  it('QemuTraceConverter gives a vfio_dma_map error naming the held map its errno, and reports one naming no map', () => {
    // The RAM-device form: 7.2 reports a BAR's failure at once (error_report_err) and goes on.
    const bar = 'vfio_listener_region_add_ram region_add [ram] 0xfd000000 - 0xfdffffff [0x7f0ff8000000]';
    const { maps, stats } = convert([
      ATTACH,
      bar,
      'qemu-system-x86_64: vfio_dma_map(0x55d0c8e0a2c0, 0xfd000000, 0x1000000, 0x7f0ff8000000) = -14 (Bad address)',
      ROM,
      'qemu-system-x86_64: vfio_dma_map(0x55d0c8e0a2c0, 0x200000000, 0x1000, 0x7f0ff8000000) = -14 (Bad address)',
    ]);
    expect(maps.map((m) => m.ret)).toEqual([-14, undefined]);
    expect(stats.unused).toEqual({ 'vfio_dma_map error (no matching map)': 1 });
  });

  it('QemuTraceConverter holds a map across lines that make no events, not across one that does', () => {
    const other = 'vfio_pci_read_config  (0000:01:00.0, @0x0, len=0x4) 0x1eb810de';
    const held = convert([ATTACH, RAM, other, 'qemu-system-x86_64: warning: something unrelated', 'VFIO_MAP_DMA failed: Cannot allocate memory']);
    expect(held.maps.map((m) => m.ret)).toEqual([-12]);
    const gone = convert([ATTACH, RAM, 'vfio_listener_region_del region_del 0x0 - 0x9ffff', 'VFIO_MAP_DMA failed: Cannot allocate memory']);
    expect(gone.maps.map((m) => m.ret)).toEqual([undefined]);
    expect(gone.stats.unused).toEqual({ 'VFIO_MAP_DMA failed (no map attempt before it)': 1 });
    // The map still comes out before the unmap that pushed it out.
    expect(gone.events.filter((e) => e.type === 'ioctl' && String(e.cmd).endsWith('MAP_DMA')).map((e) => e.cmd)).toEqual(['VFIO_IOMMU_MAP_DMA', 'VFIO_IOMMU_UNMAP_DMA']);
  });

  it('QemuTraceConverter gives one map one failure: a second VFIO_MAP_DMA failed is reported', () => {
    const { maps, stats } = convert([ATTACH, RAM, 'VFIO_MAP_DMA failed: Cannot allocate memory', 'VFIO_MAP_DMA failed: Invalid argument']);
    expect(maps.map((m) => m.ret)).toEqual([-12]);
    expect(stats.unused).toEqual({ 'VFIO_MAP_DMA failed (no map attempt before it)': 1 });
  });

  it('QemuTraceConverter converts the teardown after a refused map as before', () => {
    const { events, stats } = convert([
      ATTACH,
      RAM,
      'VFIO_MAP_DMA failed: Cannot allocate memory',
      'vfio_listener_region_del region_del 0x100000 - 0x7fffffff',
      FINAL,
      'vfio_group_put close group->fd=26',
      'vfio_container_disconnect close container->fd=25',
    ]);
    expect(events.slice(-5).map((e) => [e.type, e.cmd ?? e.op ?? e.fd, e.ret])).toEqual([
      ['ioctl', 'VFIO_IOMMU_MAP_DMA', -12],
      ['ioctl', 'VFIO_IOMMU_UNMAP_DMA', undefined],
      ['device', 'close', undefined],
      ['close', 4, undefined],
      ['close', 3, undefined],
    ]);
    expect(stats.unused).toEqual({});
  });
});

describe('importUnknown', () => {
  it('importUnknown lists memlock_limit only when --memlock-limit was not given', () => {
    expect(importUnknown({ memlockLimit: false }).filter((u) => u.startsWith('memlock_limit'))).toHaveLength(1);
    expect(importUnknown({ memlockLimit: true }).filter((u) => u.startsWith('memlock_limit'))).toEqual([]);
    expect(importUnknown({ memlockLimit: true })).toHaveLength(importUnknown({ memlockLimit: false }).length - 1);
  });
});

describe('pinledger import qemu-trace: QEMU 7.2 under a 64 MiB memlock limit', () => {
  it('import --memlock-limit 64M gives a trace whose refused pc.ram map replays as ENOMEM with no RET_MISMATCH', () => {
    const { out, lines, stdout, stderr } = importLog('qemu-7.2-enomem.log', '--memlock-limit', '64M', '--guest-memory', '2G');
    expect(stdout).toContain('19 events from 23 lines, 1 refused map, 3 ROM maps READ-only');
    expect(stderr).toBe('');
    const h = lines[0]!;
    expect(h.guest_memory).toBe('0x80000000');
    expect((h.import.unknown as string[]).some((u) => u.startsWith('memlock_limit'))).toBe(false);
    expect(lines[1]).toEqual({ type: 'process', seq: 1, pid: 1, op: 'start', memlock_limit: '0x4000000', comm: 'qemu' });
    expect(lines.filter((l) => l.cmd === 'VFIO_IOMMU_MAP_DMA').map((l) => [l.seq, l.arg.iova, l.arg.size, l.arg.flags.join('|'), l.ret])).toEqual([
      [7, '0x0', '0xa0000', 'READ|WRITE', undefined],
      [9, '0xc0000', '0x20000', 'READ', undefined],
      [11, '0xe0000', '0x20000', 'READ', undefined],
      [12, '0x100000', '0x7ff00000', 'READ|WRITE', -12],
      [14, '0xfffc0000', '0x40000', 'READ', undefined],
    ]);
    // isa-bios is pc.bios's last 128 KiB: pc.bios's mmap adds only the part not yet described.
    expect(lines.filter((l) => l.type === 'mmap').map((l) => [l.seq, l.vaddr, l.size])).toEqual([
      [8, '0x7f10c0200000', '0x20000'],
      [10, '0x7f10c0020000', '0x20000'],
      [13, '0x7f10c0000000', '0x20000'],
    ]);
    expect(lines.filter((l) => l.cmd === 'VFIO_IOMMU_UNMAP_DMA').map((l) => l.arg.iova)).toEqual(['0x0', '0xc0000', '0xe0000', '0x100000', '0xfffc0000']);
    // (Its exit status is replay's business: the refusal is the point of the trace.)
    const { doc } = replayCli(out);
    expect(doc.outcomes.find((o) => o.seq === 12)).toEqual({ seq: 12, ret: -12 });
    expect(doc.findings.filter((f) => f.code === 'RET_MISMATCH')).toEqual([]);
    // No kernel named: the model charges the ROMs' pages, as before kernel profiles.
    expect(doc.findings.find((f) => f.code === 'ACCT_LIMIT')).toMatchObject({ seq: 12, details: { locked_vm: 224, needed: 524032, limit_pages: 16384 } });
    // 0-640K, pc.rom, isa-bios and pc.bios (isa-bios's frames again): the teardown leaves nothing.
    expect(doc.peak_locked_vm).toEqual({ '1': 288 });
    expect(doc.locked_vm).toEqual({ '1': 0 });
  });

  it('import without --memlock-limit keeps the observed ENOMEM, which replay holds against the unlimited model as RET_MISMATCH', () => {
    const { out, lines } = importLog('qemu-7.2-enomem.log');
    expect(lines[0]!.guest_memory).toBeUndefined();
    expect((lines[0]!.import.unknown as string[]).some((u) => u.startsWith('memlock_limit'))).toBe(true);
    expect(lines[1]).toMatchObject({ op: 'start', memlock_limit: 'unlimited' });
    expect(lines.find((l) => l.seq === 12)).toMatchObject({ cmd: 'VFIO_IOMMU_MAP_DMA', ret: -12 });
    const { code, doc } = replayCli(out);
    expect(doc.findings.filter((f) => f.code === 'RET_MISMATCH').map((f) => [f.seq, f.details.observed, f.details.model])).toEqual([[12, -12, 0]]);
    expect(doc.outcomes.find((o) => o.seq === 12)).toEqual({ seq: 12, ret: 0 });
    expect(code).toBe(1);
  });

  it('import --memlock-limit unlimited says so and lists it as known', () => {
    const { lines } = importLog('qemu-7.2-enomem.log', '--memlock-limit', 'unlimited');
    expect(lines[1]).toMatchObject({ op: 'start', memlock_limit: 'unlimited' });
    expect((lines[0]!.import.unknown as string[]).some((u) => u.startsWith('memlock_limit'))).toBe(false);
  });

  it('import refuses a bad size or kernel with exit 2 and one line, before writing -o', () => {
    for (const [option, value, message] of [
      ['--memlock-limit', '2X', '--memlock-limit "2X": expected bytes or a size such as 64M, 2GiB, 65536K'],
      ['--guest-memory', 'unlimited', '--guest-memory "unlimited": expected bytes or a size such as 64M, 2GiB, 65536K'],
      ['--kernel', 'bookworm', '--kernel: kernel "bookworm" is not a release such as 6.1.0-57-amd64'],
      ['--kernel', '', '--kernel: kernel "" is not a release such as 6.1.0-57-amd64'],
    ]) {
      const out = join(mkdtempSync(join(tmpdir(), 'pinledger-import-')), 'out.jsonl');
      const r = spawnSync(process.execPath, [bin, 'import', 'qemu-trace', join(root, 'traces/samples/qemu/qemu-7.2-enomem.log'), '-o', out, option!, value!], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toContain(message);
      expect(r.stdout).toBe('');
      expect(existsSync(out)).toBe(false);
    }
  });

  it('import takes --memlock-limit with a unit (64MiB, 65536K, bytes) as the same limit', () => {
    for (const value of ['64MiB', '65536K', '67108864', '0x4000000']) {
      expect(importLog('qemu-7.2-enomem.log', '--memlock-limit', value).lines[1], value).toMatchObject({ op: 'start', memlock_limit: '0x4000000' });
    }
  });

  it('import --kernel writes the header kernel and lists it as known; without it the kernel stays unset and unknown', () => {
    const known = importLog('qemu-7.2-enomem.log', '--kernel', '6.1.0-57-amd64').lines[0]!;
    expect(known.kernel).toBe('6.1.0-57-amd64');
    expect((known.import.unknown as string[]).some((u) => u.startsWith('kernel'))).toBe(false);
    const unset = importLog('qemu-7.2-enomem.log').lines[0]!;
    expect(unset.kernel).toBeUndefined();
    expect((unset.import.unknown as string[]).filter((u) => u.startsWith('kernel'))).toHaveLength(1);
  });

  it('import --memlock-limit 64M --kernel 6.1.0-57-amd64: the ROMs pin the zero page, so pc.ram is refused with 160 pages charged', () => {
    const { out } = importLog('qemu-7.2-enomem.log', '--memlock-limit', '64M', '--kernel', '6.1.0-57-amd64');
    const { doc } = replayCli(out);
    expect(doc.findings.filter((f) => f.code === 'RET_MISMATCH')).toEqual([]);
    expect(doc.findings.find((f) => f.code === 'ACCT_LIMIT')).toMatchObject({ seq: 12, details: { locked_vm: 160, needed: 524032, limit_pages: 16384 } });
    expect(doc.peak_locked_vm).toEqual({ '1': 160 });
  });
});

describe('QemuTraceConverter: QEMU 7.2 listener events', () => {
  const D = '0000:00:03.0';
  const BAR_SETUP = [
    `vfio_realize  (${D}) group 7`,
    `vfio_region_setup Device ${D}, region 3 "${D} BAR 3", flags: 0xf, offset: 0x30000000000, size: 0x4000`,
    `vfio_region_mmap Region ${D} BAR 3 mmaps[0] [0x0 - 0x3fff]`,
    `vfio_pci_write_config  (${D}, @0x1c, 0xfea40000, len=0x4)`,
    `vfio_pci_write_config  (${D}, @0x4, 0x103, len=0x2)`,
  ];

  it('QemuTraceConverter understands the 7.2 skip events: no event, nothing reported', () => {
    const { events, stats } = convert([ATTACH, 'vfio_listener_region_add_skip SKIPPING region_add 0xa0000 - 0xbffff', 'vfio_listener_region_del_skip SKIPPING region_del 0xa0000 - 0xbffff']);
    expect(events.filter((e) => e.type === 'ioctl' && String(e.cmd).endsWith('MAP_DMA'))).toEqual([]);
    expect(stats.unused).toEqual({});
    expect(stats.unparsed).toBe(0);
  });

  it('QemuTraceConverter writes a BAR section over a pfnmap mmap of the whole BAR mmap, once, and its munmap at vfio_region_unmap', () => {
    const { events, stats } = convert([
      ...BAR_SETUP,
      `vfio_listener_region_add_ram region_add [ram] 0xfea41000 - 0xfea41fff [0x7f6c80a45000]`,
      `vfio_listener_region_add_ram region_add [ram] 0xfea43000 - 0xfea43fff [0x7f6c80a47000]`,
      'vfio_listener_region_del region_del 0xfea41000 - 0xfea41fff',
      'vfio_listener_region_del region_del 0xfea43000 - 0xfea43fff',
      `vfio_region_unmap Region ${D} BAR 3 mmaps[0] unmap [0x0 - 0x3fff]`,
    ]);
    expect(events.filter((e) => ['mmap', 'munmap'].includes(String(e.type)) || String(e.cmd).endsWith('MAP_DMA')).map((e) => [e.type, e.cmd ?? e.backing, e.vaddr ?? (e.arg as any).iova, e.size ?? (e.arg as any).size])).toEqual([
      ['mmap', 'pfnmap', '0x7f6c80a44000', '0x4000'],
      ['ioctl', 'VFIO_IOMMU_MAP_DMA', '0xfea41000', '0x1000'],
      ['ioctl', 'VFIO_IOMMU_MAP_DMA', '0xfea43000', '0x1000'],
      ['ioctl', 'VFIO_IOMMU_UNMAP_DMA', '0xfea41000', '0x1000'],
      ['ioctl', 'VFIO_IOMMU_UNMAP_DMA', '0xfea43000', '0x1000'],
      ['munmap', undefined, '0x7f6c80a44000', '0x4000'],
    ]);
    expect(events.find((e) => e.type === 'mmap')).toMatchObject({ prot: ['READ', 'WRITE'], flags: ['SHARED'] });
    expect(stats).toMatchObject({ barMaps: 2, romMaps: 0, unused: {} });
  });

  it('QemuTraceConverter drops a map QEMU did not make (region_add_no_dma_map) and the unmap of it, keeping the mmap', () => {
    const { events, stats } = convert([
      ...BAR_SETUP,
      `vfio_listener_region_add_ram region_add [ram] 0xfea43000 - 0xfea43fff [0x7f6c80a47000]`,
      `vfio_listener_region_add_no_dma_map Region "${D} BAR 3 mmaps[0]" 0xfea43000 size=0x1000 is not aligned to 0x10000 and cannot be mapped for DMA`,
      'vfio_listener_region_del region_del 0xfea43000 - 0xfea43fff',
    ]);
    expect(events.filter((e) => e.type === 'mmap' || String(e.cmd).endsWith('MAP_DMA')).map((e) => [e.type, e.cmd])).toEqual([['mmap', undefined]]);
    expect(stats.unused).toEqual({});
  });

  it('QemuTraceConverter leaves a no_dma_map of a sub-page section with no region_add line alone', () => {
    const { maps, stats } = convert([
      ...BAR_SETUP,
      `vfio_listener_region_add_ram region_add [ram] 0xfea41000 - 0xfea41fff [0x7f6c80a45000]`,
      `vfio_listener_region_add_no_dma_map Region "${D} BAR 3 mmaps[0]" 0xfea42008 size=0xff8 is not aligned to 0x1000 and cannot be mapped for DMA`,
    ]);
    expect(maps.map((m) => m.arg.iova)).toEqual(['0xfea41000']);
    expect(stats.unused).toEqual({});
  });

  it('QemuTraceConverter takes the version 2 format only once it wrote an mmap', () => {
    const plain = new QemuTraceConverter();
    for (const l of [ATTACH, RAM]) plain.line(l);
    plain.end();
    expect(plain.version).toBe(1);
    const rom = new QemuTraceConverter();
    for (const l of [ATTACH, ROM]) rom.line(l);
    rom.end();
    expect(rom.version).toBe(2);
    expect(rom.inferred()).toEqual(['rom pc.bios: 1 map (READ-only, its host range described as private anonymous memory, ends at 0xffffffff, where q35/pc put pc.bios)']);
  });

  it('QemuTraceConverter records the groups and mediated devices for the header', () => {
    const c = new QemuTraceConverter();
    for (const l of ['vfio_mdev  (83b8f4f2-509f-382f-3c1e-e6bfe0fa1001) is_mdev 1', 'vfio_realize  (83b8f4f2-509f-382f-3c1e-e6bfe0fa1001) group 40', ATTACH]) c.line(l);
    expect(c.topology()).toEqual({ groups: [{ id: 40, mdev_parent: 'unknown', devices: ['83b8f4f2-509f-382f-3c1e-e6bfe0fa1001'] }, { id: 12, devices: ['0000:01:00.0'] }] });
  });
});

describe('pinledger import qemu-trace: a QEMU 7.2 q35 start, replayed with replay --kernel', () => {
  it('the import of qemu-7.2-q35-e1000e.log replayed with --kernel 6.1.0-57-amd64 charges no ROM and no BAR page; with 6.12 the 128 ROM pages', () => {
    const { out, stdout, stderr } = importLog('qemu-7.2-q35-e1000e.log');
    expect(stdout).toContain('30 events from 93 lines, 3 ROM maps READ-only, 8 BAR maps over pfnmap');
    expect(stderr).toBe('not used: vfio_rom_read 2, vfio_pci_size_rom 1, vfio_msix_early_setup 1, vfio_msi_setup 1, vfio_check_pm_reset 1, vfio_intx_enable 1\n');
    const on61 = replayCli(out, '--kernel', '6.1.0-57-amd64');
    expect(on61.code).toBe(0);
    expect(on61.doc.peak_locked_vm).toEqual({ '1': 160 + 261888 + 4096 });
    expect(on61.doc.findings.filter((f) => f.code !== 'ACCT_SHARED_FRAMES')).toEqual([]);
    expect(replayCli(out, '--kernel', '6.12.48+deb13-amd64').doc.peak_locked_vm).toEqual({ '1': 160 + 261888 + 4096 + 128 });
  });
});
