import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../src/model/backends/index.js';
import { replayFiles } from '../src/replay/replay-files.js';
import { TraceError } from '../src/trace/trace-error.js';

const upstream = new Map([['upstream', BACKENDS.upstream!]]);
const sample = (n: string) => new URL(`../traces/samples/${n}`, import.meta.url).pathname;

async function replayOne(name: string) {
  const [t] = await replayFiles([sample(name)], upstream, { keepOutcomes: true });
  const r = t!.replayers.get('upstream')!;
  return { t: t!, r, locked: r.lockedVm(), codes: r.findings.map((f) => `${f.seq}:${f.code}`) };
}

describe('samples in traces/samples', () => {
  it('vm-boot: a 4 GiB guest maps 1048608 pages around the PCI hole and tears down to 0', async () => {
    const { r, locked, codes } = await replayOne('vm-boot.jsonl');
    expect(r.events).toBe(29);
    expect(locked.peak.get(4242)).toBe(1048608);
    expect(locked.current.get(4242)).toBe(0);
    expect(codes).toEqual(['13:TRACE_UNKNOWN_CMD']);
  });

  it('limit-overrun: the 2 GiB pc.ram map fails with ENOMEM under a 64 MiB limit', async () => {
    const { r, locked, codes } = await replayOne('limit-overrun.jsonl');
    expect(r.outcomes.find((o) => o.seq === 7)!.ret).toBe(-12);
    expect(locked.peak.get(4242)).toBe(160);
    expect(codes).toEqual(['7:ACCT_LIMIT']);
    expect(r.findings[0]!.details.required_limit_bytes).toBe(String((160 + 524032) * 4096));
    // The memlock answer is the what-if with no limit: both maps, 160 + 524032 pages.
    expect(r.memlockRequired().get(4242)).toEqual({ bytes: 2147090432n, breakdown: { direct: 524192, pins: 0, shared: 0 } });
    expect(r.accounting().get(4242)).toEqual({
      pid: 4242,
      peakLockedVm: 160,
      finalLockedVm: 0,
      requiredPages: 524192,
      breakdown: { direct: 524192, pins: 0, shared: 0 },
      limit: 0x4000000n,
      capIpcLock: false,
      refusals: { count: 1, firstSeq: 7, firstEvent: 'VFIO_IOMMU_MAP_DMA', limit: 0x4000000n, capIpcLock: false },
      vfioContainers: 1,
    });
  });

  it('leak: a container released with 16 pages pinned by a vGPU leaves them charged', async () => {
    const { locked, codes, r } = await replayOne('leak.jsonl');
    expect(codes).toEqual(['11:PIN_LEAK', '12:ACCT_LEAK']);
    expect(r.findings[1]!.details).toMatchObject({ pid: 4242, pages: 16 });
    expect(locked.current.get(4242)).toBe(16);
    expect(locked.peak.get(4242)).toBe(16);
  });

  it('invalid-seq: rejected at line 5, field seq', async () => {
    const err = await replayFiles([sample('invalid-seq.jsonl')], upstream).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TraceError);
    expect((err as TraceError).line).toBe(5);
    expect((err as TraceError).field).toBe('seq');
  });
});
