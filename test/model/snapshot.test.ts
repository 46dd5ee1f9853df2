import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../../src/model/backends/index.js';
import { DifferentialReplay } from '../../src/model/replay/differential.js';
import { restoreReplay, saveReplay } from '../../src/model/state/snapshot.js';
import { parseTraceText } from '../../src/trace/line-parser.js';

const all = new Map(Object.entries(BACKENDS));
const samples = ['vm-boot', 'leak', 'mixed-direct-mdev', 'vgpu-churn', 'viommu-two-containers', 'ignored-unmap-notify', 'unpin-unpinned', 'limit-overrun'];

function summary(d: DifferentialReplay, findings: Map<string, string[]>) {
  return Object.fromEntries(
    [...d.replayers].map(([n, r]) => {
      const { current, peak } = r.lockedVm();
      return [n, { current: [...current], peak: [...peak], memlock: [...r.memlockRequired()], findings: findings.get(n), snap: r.vfio!.backends().map((b) => b.snapshot()) }];
    }),
  );
}

function take(d: DifferentialReplay, into: Map<string, string[]>) {
  for (const [n, r] of d.replayers) into.set(n, [...(into.get(n) ?? []), ...r.takeFindings().map((f) => `${f.seq}:${f.code}:${f.message}`)]);
}

describe('saveReplay / restoreReplay', () => {
  for (const name of samples) {
    it(`continues ${name} exactly from a saved state, wherever the trace is cut`, () => {
      const text = readFileSync(new URL(`../../traces/samples/${name}.jsonl`, import.meta.url), 'utf8');
      const { header, events } = parseTraceText(text);
      const whole = new DifferentialReplay(all, 'upstream');
      whole.beginSegment(header);
      for (const e of events) whole.apply(e);
      const wholeFindings = new Map<string, string[]>();
      take(whole, wholeFindings);
      const expected = summary(whole, wholeFindings);
      for (const cut of [1, Math.floor(events.length / 3), Math.floor(events.length / 2), events.length - 1]) {
        let d = new DifferentialReplay(all, 'upstream');
        d.beginSegment(header);
        const f = new Map<string, string[]>();
        events.slice(0, cut).forEach((e) => d.apply(e));
        take(d, f);
        d = restoreReplay(saveReplay(d));
        // The next segment's header: same trace, no topology.
        d.beginSegment({ ...header, segment: 1, topology: undefined });
        events.slice(cut).forEach((e) => d.apply(e));
        take(d, f);
        expect(summary(d, f)).toEqual(expected);
      }
    });
  }

  it('refuses to save an object of a class it does not know', () => {
    const d = new DifferentialReplay(all, 'upstream');
    (d as unknown as { extra: unknown }).extra = new (class Stray {})();
    expect(() => saveReplay(d)).toThrow(/unregistered class Stray/);
  });
});
