/**
 * The samples of traces/samples replayed through every design, with the
 * charges each design really makes asserted exactly.
 */
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../src/model/backends/index.js';
import { replayFiles } from '../src/replay/replay-files.js';

const all = new Map(Object.entries(BACKENDS));
const sample = (n: string) => new URL(`../traces/samples/${n}`, import.meta.url).pathname;
const PID = 4242;

interface Expect {
  final: number;
  peak: number;
  memlock: number;
  cause: { direct: number; pins: number; shared: number };
  findings: string[];
}

async function check(name: string, want: Record<string, Expect>) {
  const [t] = await replayFiles([sample(name)], all);
  for (const [design, w] of Object.entries(want)) {
    const r = t!.replayers.get(design)!;
    const { current, peak } = r.lockedVm();
    const m = r.memlockRequired().get(PID)!;
    expect({ design, final: current.get(PID), peak: peak.get(PID), memlock: Number(m.bytes), cause: m.breakdown, findings: r.findings.map((f) => `${f.seq}:${f.code}`) }).toEqual({
      design,
      ...w,
    });
  }
}

describe('mixed-direct-mdev: a direct-assigned GPU and a vGPU in one container (the review\'s case)', () => {
  it('charges the vGPU pins again only under rfc-v5', async () => {
    const none = { direct: 262144, pins: 0, shared: 0 };
    await check('mixed-direct-mdev.jsonl', {
      upstream: { final: 0, peak: 262144, memlock: 1073741824, cause: none, findings: ['10:DESIGN_DIVERGENCE'] },
      'rfc-v5': {
        final: 0,
        peak: 262660,
        memlock: 262660 * 4096,
        cause: { direct: 262144, pins: 516, shared: 516 },
        findings: ['10:ACCT_DOUBLE_CHARGE', '10:DESIGN_DIVERGENCE', '10:DESIGN_DIVERGENCE', '11:ACCT_DOUBLE_CHARGE'],
      },
      'iommufd-compat': { final: 0, peak: 262144, memlock: 1073741824, cause: none, findings: ['10:DESIGN_DIVERGENCE'] },
    });
  });

  it('reports the double charges with their page counts and the divergence with both values', async () => {
    const [t] = await replayFiles([sample('mixed-direct-mdev.jsonl')], all);
    const v5 = t!.replayers.get('rfc-v5')!.findings;
    expect(v5.filter((f) => f.code === 'ACCT_DOUBLE_CHARGE').map((f) => f.details.pages)).toEqual([512, 4]);
    const d = t!.replayers.get('upstream')!.findings[0]!;
    expect(d.details).toMatchObject({ kind: 'charge', pid: PID, upstream: 262144, 'rfc-v5': 262656 });
  });
});

describe('vgpu-churn: 24 overlapping windows of 64 pinned pages in a mediated-only container', () => {
  /** An independent per-page count of the same churn: pages with a reference, and references. */
  function reference() {
    const refs = new Map<number, number>();
    let peakPages = 0;
    let peakRefs = 0;
    const base = (i: number) => (i % 8) * 32;
    const add = (i: number, d: number) => {
      for (let p = base(i); p < base(i) + 64; p++) refs.set(p, (refs.get(p) ?? 0) + d);
    };
    const measure = () => {
      let pages = 0;
      let total = 0;
      for (const n of refs.values()) if (n > 0) (pages++, (total += n));
      peakPages = Math.max(peakPages, pages);
      peakRefs = Math.max(peakRefs, total);
    };
    for (let i = 0; i < 24; i++) {
      add(i, 1);
      measure();
      if (i >= 2) add(i - 2, -1);
    }
    return { peakPages, peakRefs };
  }

  it('charges distinct pinned pages under upstream and iommufd, every pin under rfc-v5', async () => {
    const ref = reference();
    expect(ref).toEqual({ peakPages: 160, peakRefs: 192 });
    const [t] = await replayFiles([sample('vgpu-churn.jsonl')], all);
    const peaks = Object.fromEntries([...t!.replayers].map(([n, r]) => [n, r.lockedVm().peak.get(PID)]));
    expect(peaks).toEqual({ upstream: ref.peakPages, 'rfc-v5': ref.peakRefs, 'iommufd-compat': ref.peakPages });
    const finals = Object.fromEntries([...t!.replayers].map(([n, r]) => [n, r.lockedVm().current.get(PID)]));
    expect(finals).toEqual({ upstream: 0, 'rfc-v5': 0, 'iommufd-compat': 0 });
    const doubles = t!.replayers.get('rfc-v5')!.findings.filter((f) => f.code === 'ACCT_DOUBLE_CHARGE');
    expect(doubles).toHaveLength(21);
    expect(doubles.reduce((n, f) => n + Number(f.details.pages), 0)).toBe(21 * 32);
    for (const d of ['upstream', 'iommufd-compat']) {
      expect(t!.replayers.get(d)!.findings.map((f) => f.code)).toEqual(['DESIGN_DIVERGENCE']);
    }
    expect(t!.replayers.get('upstream')!.memlockRequired().get(PID)!.bytes).toBe(160n * 4096n);
  });
});

describe('viommu-two-containers: one container per device, each mapping the same 1 GiB', () => {
  it('charges the frames twice in every design and says how much that adds', async () => {
    const twice = { direct: 524288, pins: 0, shared: 262144 };
    const want: Expect = { final: 0, peak: 524288, memlock: 2147483648, cause: twice, findings: ['11:ACCT_SHARED_FRAMES'] };
    await check('viommu-two-containers.jsonl', { upstream: want, 'rfc-v5': want, 'iommufd-compat': want });
    const [t] = await replayFiles([sample('viommu-two-containers.jsonl')], all);
    expect(t!.replayers.get('upstream')!.findings[0]!.details).toEqual({ pid: PID, pages: 262144, total: 262144 });
  });
});

describe('ignored-unmap-notify: a vendor driver that keeps its pins after the unmap notification', () => {
  it('is a PIN_LEAK everywhere; upstream unmaps anyway, rfc-v5 keeps the pins charged, iommufd refuses with EDEADLOCK', async () => {
    const pins = { direct: 0, pins: 8, shared: 0 };
    await check('ignored-unmap-notify.jsonl', {
      upstream: { final: 0, peak: 8, memlock: 32768, cause: pins, findings: ['10:PIN_LEAK', '10:DESIGN_DIVERGENCE', '10:DESIGN_DIVERGENCE'] },
      'rfc-v5': { final: 0, peak: 8, memlock: 32768, cause: pins, findings: ['10:PIN_LEAK', '10:DESIGN_DIVERGENCE', '10:DESIGN_DIVERGENCE', '11:PIN_LEAK'] },
      'iommufd-compat': {
        final: 8,
        peak: 8,
        memlock: 32768,
        cause: pins,
        findings: ['10:PIN_LEAK', '10:DESIGN_DIVERGENCE', '10:DESIGN_DIVERGENCE', '11:PIN_LEAK', '12:ACCT_LEAK'],
      },
    });
    const [t] = await replayFiles([sample('ignored-unmap-notify.jsonl')], all, { keepOutcomes: true });
    const unmapRet = Object.fromEntries([...t!.replayers].map(([n, r]) => [n, r.outcomes.find((o) => o.seq === 10)!.ret]));
    expect(unmapRet).toEqual({ upstream: 0, 'rfc-v5': 0, 'iommufd-compat': -35 });
  });
});

describe('unpin-unpinned: unpins of pages never pinned, and a pin outside every mapping', () => {
  it('reports UNPIN_NOT_PINNED per page and PIN_OUTSIDE_DMA in every design, with their own errno', async () => {
    const pins = { direct: 0, pins: 4, shared: 0 };
    const base = ['9:UNPIN_NOT_PINNED', '9:UNPIN_NOT_PINNED', '10:PIN_OUTSIDE_DMA'];
    await check('unpin-unpinned.jsonl', {
      upstream: { final: 0, peak: 4, memlock: 16384, cause: pins, findings: [...base, '10:DESIGN_DIVERGENCE'] },
      'rfc-v5': { final: 0, peak: 4, memlock: 16384, cause: pins, findings: [...base, '10:DESIGN_DIVERGENCE'] },
      'iommufd-compat': { final: 0, peak: 4, memlock: 16384, cause: pins, findings: [...base, '10:DESIGN_DIVERGENCE', '10:DESIGN_DIVERGENCE'] },
    });
    const [t] = await replayFiles([sample('unpin-unpinned.jsonl')], all, { keepOutcomes: true });
    const pinRet = Object.fromEntries([...t!.replayers].map(([n, r]) => [n, r.outcomes.find((o) => o.seq === 10)!.ret]));
    expect(pinRet).toEqual({ upstream: -22, 'rfc-v5': -22, 'iommufd-compat': -2 });
  });
});

describe('the direct-only samples are the same under every design', () => {
  it('vm-boot needs 4 GiB + 128 KiB of memlock in each', async () => {
    const [t] = await replayFiles([sample('vm-boot.jsonl')], all);
    for (const r of t!.replayers.values()) {
      expect(r.memlockRequired().get(PID)!.bytes).toBe(1048608n * 4096n);
      expect(r.findings.filter((f) => f.severity === 'error')).toEqual([]);
    }
  });

  it('leak: the container released with pins leaves them charged under upstream and iommufd; rfc-v5 unpins them', async () => {
    const [t] = await replayFiles([sample('leak.jsonl')], all);
    const finals = Object.fromEntries([...t!.replayers].map(([n, r]) => [n, r.lockedVm().current.get(PID)]));
    expect(finals).toEqual({ upstream: 16, 'rfc-v5': 0, 'iommufd-compat': 16 });
    expect(t!.replayers.get('rfc-v5')!.lockedVm().peak.get(PID)).toBe(20);
  });
});
