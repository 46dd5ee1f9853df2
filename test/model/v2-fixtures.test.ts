import { describe, expect, it } from 'vitest';
import { replayFiles } from '../../src/replay/replay-files.js';
import { driversFor } from '../../src/replay/designs.js';
import type { Replayer } from '../../src/model/replay/replayer.js';

const fixture = (name: string) => new URL(`./fixtures/${name}.jsonl`, import.meta.url).pathname;

async function replay(name: string, kernel?: string): Promise<Replayer> {
  const [t] = await replayFiles([fixture(name)], (h) => driversFor(['upstream'], h), { keepOutcomes: true, ...(kernel ? { kernel } : {}) });
  return t!.replayers.get('upstream')!;
}

const codes = (r: Replayer) => r.findings.map((f) => `${f.seq}:${f.code}`);
const P = 4242;

describe('version 2 fixtures (test/model/fixtures) replay to the kernel values', () => {
  it('qemu-q35-roms: a 256 MiB q35 start peaks at 65440 pages on 6.1 (the 128 ROM pages are the zero page), 65568 on 6.12', async () => {
    const r61 = await replay('qemu-q35-roms');
    expect(r61.accounting().get(P)!.peakLockedVm).toBe(65440);
    expect(codes(r61)).toEqual([]);
    const r612 = await replay('qemu-q35-roms', '6.12.48+deb12-amd64');
    expect(r612.accounting().get(P)!.peakLockedVm).toBe(65568);
  });

  it('qemu-q35-roms-no-mmap: without mmap events the model charges the ROMs, and each ACCT_MISMATCH names the zero page', async () => {
    const r = await replay('qemu-q35-roms-no-mmap');
    // pc.bios shares its top 32 pages with the isa-bios alias: charged twice, as the kernel would if it charged them.
    expect(codes(r)).toEqual(['7:ACCT_MISMATCH', '8:ACCT_MISMATCH', '9:ACCT_MISMATCH', '10:ACCT_SHARED_FRAMES', '10:ACCT_MISMATCH']);
    const [rom, isa, high, , bios] = r.findings;
    expect(rom!.message).toBe(
      'The trace observed locked_vm 160 pages for pid 4242 where the model has 192; 32 pages is the size of the READ-only mapping at iova 0xc0000: the likely cause is the zero page (memory never written, which Linux before 6.2 pins without a charge and 6.2+ charges); this trace has no mmap events to show it',
    );
    expect(rom!.details).toEqual({ pid: P, observed: 160, model: 192, likely_cause: 'zero-page', read_only_mappings: ['0xc0000'] });
    expect(isa!.details).toMatchObject({ observed: 160, model: 224, read_only_mappings: ['0xc0000', '0xe0000'] });
    expect(high!.details).toMatchObject({ observed: 65440, model: 65504, likely_cause: 'zero-page' });
    expect(bios!.details).toMatchObject({ observed: 65440, model: 65568, read_only_mappings: ['0xc0000', '0xe0000', '0xfffc0000'] });
  });

  it('fork-dup2: dup2 fds, a forked child maps 256 pages through them, no RET_MISMATCH, no ACCT_MISMATCH', async () => {
    const r = await replay('fork-dup2');
    expect(codes(r)).toEqual([]);
    const a = r.accounting();
    expect([a.get(P)!.peakLockedVm, a.get(4243)!.peakLockedVm]).toEqual([512, 256]);
  });

  it('mlock-then-map: mlock and DMA share the 256-page limit; the answer needs 320 pages', async () => {
    const r = await replay('mlock-then-map');
    expect(codes(r)).toEqual(['8:ACCT_LIMIT', '12:ACCT_LIMIT']);
    const a = r.accounting().get(P)!;
    expect(a).toMatchObject({ peakLockedVm: 256, finalLockedVm: 0, refusals: { count: 2, firstSeq: 8, firstEvent: 'VFIO_IOMMU_MAP_DMA' } });
    expect(a.requiredPages).toBe(320);
    expect(a.breakdown).toEqual({ direct: 192, pins: 0, shared: 0, mlock: 128 });
  });

  it('bar-pfnmap: the BAR (32 pages) maps without a charge, the RAM 256', async () => {
    const r = await replay('bar-pfnmap');
    expect(codes(r)).toEqual([]);
    expect(r.accounting().get(P)!.peakLockedVm).toBe(256);
  });
});
