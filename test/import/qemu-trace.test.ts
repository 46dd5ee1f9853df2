import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseLine } from '../../src/import/qemu-trace.js';
import { BACKENDS } from '../../src/model/backends/index.js';
import { replayFiles } from '../../src/replay/replay-files.js';

const root = new URL('../..', import.meta.url).pathname;

function importLog(name: string) {
  const out = join(mkdtempSync(join(tmpdir(), 'pinledger-import-')), 'out.jsonl');
  const r = spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), 'import', 'qemu-trace', join(root, 'traces/samples/qemu', name), '-o', out], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return { out, stdout: r.stdout, stderr: r.stderr, lines: readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>) };
}

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
    expect(stderr).toContain('vfio_pci_read_config 1');
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
    expect(stderr).toContain('vfio_dma_map error (no matching map) 1');
    const r = await replay(out);
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
