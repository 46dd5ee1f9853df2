/**
 * The audit commands against a database made by ingesting the samples,
 * asserting exact values.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
let dir = '';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), ...args], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const json = (...args: string[]) => {
  const r = cli(...args, '--json');
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out) as Record<string, unknown>;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pinledger-queries-'));
  const samples = join(root, 'traces/samples');
  const files = readdirSync(samples).filter((f) => f.endsWith('.jsonl')).sort().map((f) => join(samples, f));
  expect(cli('ingest', ...files).code).toBe(2); // invalid-seq is quarantined
});

describe('pinledger traces', () => {
  it('lists every trace with segments, status, events, processes, peak and findings by severity', () => {
    const doc = json('traces') as { traces: Record<string, unknown>[] };
    const byId = Object.fromEntries(doc.traces.map((t) => [t.trace_id, t]));
    expect(Object.keys(byId).sort()).toEqual([
      'host42/bad',
      'host42/ignored-notify',
      'host42/unpin-unpinned',
      'host42/vgpu-churn',
      'host42/vgpu-leak',
      'host42/vgpu-mixed',
      'host42/viommu',
      'host42/vm-boot',
      'host42/vm-memlock',
    ]);
    expect(byId['host42/vm-boot']).toMatchObject({ segments: 1, status: 'ok', events: 29, processes: 1, peak_locked_vm: 1048608, memlock_required: 4295098368, findings: { error: 0, warning: 0, info: 1 }, backends: ['upstream'] });
    // The headline is upstream's (the captured design); rfc-v5's 262660 pages are a comparison.
    expect(byId['host42/vgpu-mixed']).toMatchObject({ events: 19, design: 'upstream', peak_locked_vm: 262144, memlock_required: 1073741824, findings: { error: 2, warning: 0, info: 4 }, backends: ['upstream', 'rfc-v5', 'iommufd-compat'] });
    expect(byId['host42/vm-memlock']).toMatchObject({
      design: 'upstream',
      peak_locked_vm: 160,
      memlock_required: 2147090432,
      memlock_limit: 67108864,
      memlock_short: 2147090432 - 67108864,
      limit_refusals: 1,
    });
    expect(byId['host42/bad']).toMatchObject({ segments: 0, quarantined: 1, status: 'quarantined', events: 0 });
    expect((json('traces', '--status', 'quarantined') as { traces: { trace_id: string }[] }).traces.map((t) => t.trace_id)).toEqual(['host42/bad']);
    expect((json('traces', '--since', '2999-01-01') as { traces: unknown[] }).traces).toEqual([]);
    expect((json('traces', '--since', '1h') as { traces: unknown[] }).traces).toHaveLength(9);
  });

  it('prints an aligned table', () => {
    const r = cli('traces');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toMatch(/^trace\s+segments\s+status\s+events\s+processes\s+peak locked_vm\s+memlock needed\s+limit\s+verdict\s+err\/warn\/info\s+updated$/);
    expect(r.out).toMatch(/host42\/vm-boot\s+1\s+ok\s+29\s+1\s+1,048,608 pages \(4\.0 GiB\)\s+4,194,432 KiB\s+5,242,880 KiB\s+enough\s+0\/0\/1/);
    expect(r.out).toMatch(/host42\/vm-memlock\s+1\s+ok\s+10\s+1\s+160 pages \(640 KiB\)\s+2,096,768 KiB\s+65,536 KiB\s+short by 2,031,232 KiB\s+0\/1\/0/);
  });
});

describe('pinledger findings', () => {
  it('filters by trace, code, severity and backend, with the event and the events before it', () => {
    const doc = json('findings', '--trace', 'host42/vgpu-mixed', '--code', 'ACCT_DOUBLE_CHARGE') as { findings: Record<string, unknown>[] };
    expect(doc.findings.map((f) => [f.backend, f.seq, f.severity, (f.details as { pages: number }).pages])).toEqual([
      ['rfc-v5', 10, 'error', 512],
      ['rfc-v5', 11, 'error', 4],
    ]);
    const first = doc.findings[0]!;
    expect(first.event).toMatchObject({ type: 'pin', seq: 10, npage: 512 });
    expect((first.context as { seq: number }[]).map((c) => c.seq)).toEqual([7, 8, 9]);
    expect((json('findings', '--severity', 'error', '--backend', 'upstream') as { findings: { code: string }[] }).findings.map((f) => f.code).sort()).toEqual([
      'ACCT_LEAK',
      'PIN_LEAK',
      'PIN_LEAK',
      'PIN_OUTSIDE_DMA',
      'UNPIN_NOT_PINNED',
      'UNPIN_NOT_PINNED',
    ]);
    expect((json('findings', '--limit', '3') as { findings: unknown[] }).findings).toHaveLength(3);
    expect((json('findings', '--since', '2999-01-01') as { findings: unknown[] }).findings).toEqual([]);
  });

  it('exits 2 for an unknown trace, naming the ones that exist', () => {
    const r = cli('findings', '--trace', 'host42/nope');
    expect(r.code).toBe(2);
    expect(r.err).toContain('No trace "host42/nope"; traces: host42/ignored-notify, host42/unpin-unpinned');
  });
});

describe('pinledger accounting', () => {
  it('gives the timeline, the peak with its event, the final value, the charge by cause and the memlock answer per design', () => {
    const doc = json('accounting', '--trace', 'host42/vgpu-churn') as { accounting: Record<string, unknown>[] };
    const byDesign = Object.fromEntries(doc.accounting.map((a) => [a.backend, a]));
    expect(byDesign.upstream).toMatchObject({ pid: 4242, peak_locked_vm: 160, final_locked_vm: 0, memlock_required: 655360, peak_by_cause: { direct: 0, pins: 160, shared: 0 }, peak_seq: 22 });
    expect(byDesign['rfc-v5']).toMatchObject({ peak_locked_vm: 192, memlock_required: 786432, peak_by_cause: { direct: 0, pins: 192, shared: 64 }, peak_seq: 10 });
    expect((byDesign.upstream!.peak_event as { type: string; seq: number }).seq).toBe(22);
    const tl = byDesign.upstream!.timeline as [number, number][];
    expect(tl[0]).toEqual([1, 0]);
    expect(tl.at(-1)).toEqual([55, 0]);
    expect(Math.max(...tl.map((p) => p[1]))).toBe(160);
  });

  it('narrows to a pid and a design, and draws a text chart', () => {
    const doc = json('accounting', '--trace', 'host42/viommu', '--pid', '4242', '--backend', 'upstream') as { accounting: Record<string, unknown>[] };
    expect(doc.accounting).toHaveLength(1);
    expect(doc.accounting[0]).toMatchObject({ peak_locked_vm: 524288, memlock_required: 2147483648, peak_by_cause: { direct: 524288, pins: 0, shared: 262144 } });
    const r = cli('accounting', '--trace', 'host42/viommu');
    expect(r.out).toContain('needed    2,097,152 KiB (2,147,483,648 bytes, 2 GiB): the peak with RLIMIT_MEMLOCK unlimited');
    expect(r.out).toMatch(/timeline {2}\|[ ▁▂▃▄▅▆▇█]+\|/);
  });
});

describe('pinledger accounting: the memlock answer', () => {
  const SENTENCE =
    'pid 4242 needs RLIMIT_MEMLOCK >= 2,096,768 KiB (2,147,090,432 bytes, 2.0 GiB); the limit in force was 65,536 KiB, short by 2,031,232 KiB; VFIO_IOMMU_MAP_DMA at seq 7 failed because of it';

  it('stores the what-if answer, the limit in force and the first refusal, and leads with the sentence', () => {
    const doc = json('accounting', '--trace', 'host42/vm-memlock') as { answer: string[]; accounting: Record<string, unknown>[] };
    expect(doc.answer).toEqual([SENTENCE]);
    expect(doc.accounting).toHaveLength(1);
    expect(doc.accounting[0]).toMatchObject({
      backend: 'upstream',
      role: 'deciding',
      pid: 4242,
      peak_locked_vm: 160,
      final_locked_vm: 0,
      memlock_required: 2147090432,
      memlock_limit: 67108864,
      cap_ipc_lock: false,
      memlock_short: 2079981568,
      limit_refusals: 1,
      first_refusal: { seq: 7, event: 'VFIO_IOMMU_MAP_DMA' },
      containers: 1,
      peak_by_cause: { direct: 524192, pins: 0, shared: 0 },
    });
    const r = cli('accounting', '--trace', 'host42/vm-memlock', '--guest-memory', '2G');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toBe(SENTENCE + "; libvirt's default for this 2 GiB guest is 3,145,728 KiB (1 x guest memory + 1 GiB), enough");
    expect(r.out).toContain('limit     65,536 KiB (67,108,864 bytes, 64 MiB); refused 1 operation, the first at seq 7');
  });
});

describe('pinledger state', () => {
  it('shows the containers, domains, mappings and pins just after an event, or at the end', () => {
    const at = json('state', '--trace', 'host42/vgpu-mixed', '--at', '10') as { backends: Record<string, { containers: { backend: { dmas: Record<string, unknown>[]; domains: unknown[]; mediated_groups: number[] } }[]; processes: { locked_vm: number }[] }> };
    const up = at.backends.upstream!;
    expect(up.processes[0]!.locked_vm).toBe(262144);
    const c = up.containers[0]!;
    expect(c.backend.mediated_groups).toEqual([40]);
    expect(c.backend.domains).toHaveLength(1);
    expect(c.backend.dmas).toEqual([{ iova: '0x0', size: '0x40000000', vaddr: '0x7f1000000000', prot: 3, pid: 4242, pinned: true, charged_pages: 262144, external_pins: 512 }]);
    expect(at.backends['rfc-v5']!.processes[0]!.locked_vm).toBe(262656);
    const end = json('state', '--trace', 'host42/vgpu-leak') as { backends: Record<string, { containers: unknown[]; processes: { locked_vm: number }[] }> };
    expect(end.backends.upstream!.containers).toEqual([]);
    expect(end.backends.upstream!.processes[0]!.locked_vm).toBe(16);
  });
});

describe('pinledger diff', () => {
  it('lists where two designs disagree: results, charges, findings, first divergence', () => {
    type Doc = Record<string, any>;
    const doc = json('diff', '--trace', 'host42/unpin-unpinned', '--backends', 'upstream,iommufd-compat') as Doc;
    expect(doc.first_divergence).toMatchObject({ seq: 10 });
    expect(doc.results).toEqual({ differing: 1, first: [{ seq: 10, event: 'pin', upstream: -22, 'iommufd-compat': -2 }] });
    expect(doc.charges.differing_events).toBe(0);
    const churn = json('diff', '--trace', 'host42/vgpu-churn', '--backends', 'upstream,rfc-v5') as Doc;
    expect(churn.memlock_required).toEqual({ upstream: { '4242': 655360 }, 'rfc-v5': { '4242': 786432 } });
    expect(churn.findings).toEqual({ upstream: {}, 'rfc-v5': { ACCT_DOUBLE_CHARGE: 21 } });
    // Any two designs compare, even ones the trace was not ingested with.
    const boot = json('diff', '--trace', 'host42/vm-boot', '--backends', 'upstream,iommufd-compat') as Doc;
    expect(boot.first_divergence).toBeNull();
    expect(cli('diff', '--trace', 'host42/vm-boot', '--backends', 'upstream').code).toBe(2);
  });
});

describe('pinledger sql', () => {
  it('answers reads and refuses anything else', () => {
    const doc = json('sql', "SELECT code, count(*) AS n FROM findings WHERE backend = 'rfc-v5' GROUP BY code ORDER BY code") as { rows: unknown[] };
    expect(doc.rows).toEqual([
      { code: 'ACCT_DOUBLE_CHARGE', n: 24 },
      { code: 'DESIGN_DIVERGENCE', n: 9 },
      { code: 'PIN_LEAK', n: 3 },
      { code: 'PIN_OUTSIDE_DMA', n: 1 },
      { code: 'UNPIN_NOT_PINNED', n: 2 },
    ]);
    for (const q of ['DELETE FROM findings', "UPDATE traces SET events = 0", 'DROP TABLE findings', "INSERT INTO traces (trace_id) VALUES ('x')", 'PRAGMA user_version = 9']) {
      const r = cli('sql', q);
      expect(r.code, q).toBe(2);
    }
    expect(cli('sql', 'SELECT nope FROM nowhere').err).toContain('SQL error');
    expect((json('sql', 'SELECT count(*) AS n FROM findings') as { rows: { n: number }[] }).rows[0]!.n).toBeGreaterThan(0);
  });
});

describe('query errors', () => {
  it('exit 2 with a message when the database does not exist', () => {
    const r = spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), 'traces', '--db', join(dir, 'missing.db')], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('No database at');
  });
});
