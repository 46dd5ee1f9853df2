import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WORKLOADS, generate, type GenOptions, type Workload } from '../../src/gen/workloads.js';
import { fileSink, type LineSink } from '../../src/gen/writer.js';
import { BACKENDS } from '../../src/model/backends/index.js';
import { replayFiles } from '../../src/replay/replay-files.js';

const GiB = 1n << 30n;
const base: GenOptions = { seed: 7, traceId: 't', ram: 8n * GiB, events: 5000, numa: 2, hotplug: 1, devices: 2, batch: 16, workingSet: 1024, memlock: 'unlimited' };

async function toFile(w: Workload, o: GenOptions = base): Promise<string> {
  const f = join(mkdtempSync(join(tmpdir(), 'pinledger-gen-')), `${w}.jsonl`);
  await generate(w, o, fileSink(f));
  return f;
}

describe('pinledger gen', () => {
  for (const w of WORKLOADS) {
    it(`${w}: the same seed gives the same trace, another seed another, and it replays without errors`, async () => {
      const a = readFileSync(await toFile(w));
      const b = readFileSync(await toFile(w));
      expect(createHash('sha256').update(a).digest('hex')).toBe(createHash('sha256').update(b).digest('hex'));
      if (w !== 'vm-boot') {
        const c = readFileSync(await toFile(w, { ...base, seed: 8 }));
        expect(c.equals(a)).toBe(false);
      }
      const [t] = await replayFiles([await toFile(w)], new Map([['upstream', BACKENDS.upstream!]]));
      const r = t!.replayers.get('upstream')!;
      expect(r.findings.filter((f) => f.severity === 'error')).toEqual([]);
      expect(r.lockedVm().current.get(4242)).toBe(0);
    });
  }

  it('vm-boot: 8 GiB on two NUMA nodes with a hot-plugged DIMM needs 9 GiB + the ROMs', async () => {
    const [t] = await replayFiles([await toFile('vm-boot')], new Map([['upstream', BACKENDS.upstream!]]));
    const r = t!.replayers.get('upstream')!;
    // 8 GiB less the 640K-1M hole (96 pages), 1 GiB DIMM, 128 + 256 KiB of ROM.
    expect(r.lockedVm().peak.get(4242)).toBe(2097152 - 96 + 262144 + 32 + 64);
  });

  it('vm-boot boots one VM by default and VMs one after another up to --events', async () => {
    const starts = (f: string) => readFileSync(f, 'utf8').split('\n').filter((l) => l.includes('"op":"start"')).length;
    const lines = (f: string) => readFileSync(f, 'utf8').trim().split('\n').length - 1;
    const one = await toFile('vm-boot', { ...base, events: 0 });
    expect(starts(one)).toBe(1);
    const many = await toFile('vm-boot', { ...base, events: 3 * lines(one) });
    expect(starts(many)).toBe(3);
    expect(lines(many)).toBe(3 * lines(one));
  });

  it('vm-boot maps terabytes as cheaply as gigabytes', async () => {
    const [t] = await replayFiles([await toFile('vm-boot', { ...base, ram: 4n << 40n, numa: 8 })], new Map([['upstream', BACKENDS.upstream!]]));
    expect(t!.replayers.get('upstream')!.lockedVm().peak.get(4242)).toBe(Number((4n << 40n) / 4096n) - 96 + 262144 + 96);
  });

  it('writes 10 million events in bounded memory', async () => {
    let lines = 0;
    let bytes = 0;
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    let samples = 0;
    const sink: LineSink = {
      line(text) {
        lines++;
        bytes += text.length + 1;
        if (lines % 100_000 === 0) {
          peak = Math.max(peak, process.memoryUsage().heapUsed);
          samples++;
        }
      },
      close: async () => undefined,
    };
    const n = await generate('vgpu-churn', { ...base, events: 10_000_000, workingSet: 65536 }, sink);
    expect(samples).toBe(100);
    expect(n).toBeGreaterThanOrEqual(10_000_000);
    expect(lines).toBe(n + 1);
    expect(bytes).toBeGreaterThan(1e9);
    // The generator keeps the working set, never the trace.
    expect(peak - before).toBeLessThan(64 * 1024 * 1024);
  }, 300000);
});
