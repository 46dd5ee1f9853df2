/**
 * The property test: random sequences of valid and invalid operations on a
 * small address space, replayed through the model and through the
 * page-granular reference model, for every design, must give the same
 * result, the same locked_vm and the same findings after every event.
 * Fixed seed in CI; PINLEDGER_ORACLE_RUNS sets how many sequences.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../../src/model/backends/index.js';
import { Replayer } from '../../src/model/replay/replayer.js';
import { parseTraceText } from '../../src/trace/line-parser.js';
import { type Design, PageModel } from './page-model.js';

const P = 4096;
const hx = (pages: number) => '0x' + (pages * P).toString(16);
const RUNS = Number(process.env.PINLEDGER_ORACLE_RUNS ?? 1000);
const SEED = Number(process.env.PINLEDGER_ORACLE_SEED ?? 20261124);

const header = {
  type: 'header',
  format: 'vfio-trace',
  version: 1,
  trace_id: 'oracle',
  topology: {
    iommus: [
      { id: 'a', cache_coherent: true, aperture: ['0x0', '0x' + (64 * P - 1).toString(16)], reserved: [{ start: hx(40), end: '0x' + (42 * P - 1).toString(16) }] },
      { id: 'b', cache_coherent: false, aperture: ['0x0', '0x' + (32 * P - 1).toString(16)], reserved: [] },
    ],
    groups: [
      { id: 1, iommu: 'a', devices: ['0000:01:00.0'] },
      { id: 2, iommu: 'b', devices: ['0000:02:00.0'] },
      { id: 40, mdev_parent: '0000:00:02.0', devices: ['m1'] },
    ],
  },
};

const groupFd: Record<number, number> = { 1: 21, 2: 22, 40: 23 };

type Op =
  | { op: 'setc' | 'unsetc'; g: 1 | 2 | 40 }
  | { op: 'iommu'; v2: boolean }
  | { op: 'map'; first: number; pages: number; va: number; flags: readonly string[] }
  | { op: 'unmap'; first: number; pages: number; all: boolean }
  | { op: 'pin' | 'unpin'; first: number; n: number; write: boolean }
  | { op: 'dev'; open: boolean }
  | { op: 'rlimit'; limit: number | null; cap: boolean };

const group = fc.constantFrom<1 | 2 | 40>(1, 2, 40);
/** Pages mostly in a small window, so pins and unmaps meet the mappings. */
const page = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 24 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 70 }) });
const mapArb = fc.record({
  op: fc.constant('map' as const),
  first: page,
  pages: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 12, arbitrary: fc.integer({ min: 1, max: 12 }) }),
  va: fc.integer({ min: 0, max: 40 }),
  flags: fc.constantFrom<readonly string[]>(['READ', 'WRITE'], ['READ', 'WRITE'], ['READ', 'WRITE'], ['READ'], [], ['READ', 'EXEC']),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('setc' as const), g: group }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unsetc' as const), g: group }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('iommu' as const), v2: fc.boolean() }) },
  { weight: 6, arbitrary: mapArb },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('unmap' as const), first: page, pages: fc.integer({ min: 0, max: 16 }), all: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 6, arbitrary: fc.constant(false) }) }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('pin' as const), first: page, n: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 8, arbitrary: fc.integer({ min: 1, max: 6 }) }), write: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('unpin' as const), first: page, n: fc.integer({ min: 0, max: 6 }), write: fc.constant(false) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('dev' as const), open: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('rlimit' as const), limit: fc.option(fc.integer({ min: 0, max: 48 })), cap: fc.boolean() }) },
);

function toEvent(o: Op): Record<string, unknown> {
  const pid = 100;
  switch (o.op) {
    case 'setc':
      return { type: 'ioctl', pid, fd: groupFd[o.g], cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 20 } };
    case 'unsetc':
      return { type: 'ioctl', pid, fd: groupFd[o.g], cmd: 'VFIO_GROUP_UNSET_CONTAINER' };
    case 'iommu':
      return { type: 'ioctl', pid, fd: 20, cmd: 'VFIO_SET_IOMMU', arg: o.v2 ? 'VFIO_TYPE1v2_IOMMU' : 'VFIO_TYPE1_IOMMU' };
    case 'map':
      return { type: 'ioctl', pid, fd: 20, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: [...o.flags], vaddr: hx(0x7f000000 + o.va), iova: hx(o.first), size: hx(o.pages) } };
    case 'unmap':
      return { type: 'ioctl', pid, fd: 20, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: o.all ? { flags: ['ALL'], iova: '0x0', size: '0x0' } : { flags: [], iova: hx(o.first), size: hx(o.pages) } };
    case 'pin':
      return { type: 'pin', dev: 'm1', iova: hx(o.first), npage: o.n, prot: o.write ? ['READ', 'WRITE'] : ['READ'] };
    case 'unpin':
      return { type: 'unpin', dev: 'm1', iova: hx(o.first), npage: o.n };
    case 'dev':
      return { type: 'device', dev: 'm1', op: o.open ? 'open' : 'close' };
    case 'rlimit':
      return { type: 'process', pid, op: 'setrlimit', memlock_limit: o.limit === null ? 'unlimited' : hx(o.limit), cap_ipc_lock: o.cap };
  }
}

const IGNORED = new Set(['ACCT_SHARED_FRAMES', 'DESIGN_DIVERGENCE']);

/** What the sequences exercised, so a test that checks nothing cannot pass. */
type Coverage = Record<string, number>;

interface Start {
  /** Mappings made right after SET_IOMMU. */
  maps: Op[];
  limit: number | null;
  cap: boolean;
  /** Groups put in the container before SET_IOMMU, in order. */
  groups: (1 | 2 | 40)[];
  v2: boolean;
  deviceOpen: boolean;
}

function check(design: Design, start: Start, ops: Op[], cov: Coverage): void {
  const prelude: Record<string, unknown>[] = [
    { type: 'process', pid: 100, op: 'start', memlock_limit: start.limit === null ? 'unlimited' : hx(start.limit), cap_ipc_lock: start.cap },
    { type: 'open', pid: 100, fd: 20, path: '/dev/vfio/vfio' },
    { type: 'open', pid: 100, fd: 21, path: '/dev/vfio/1' },
    { type: 'open', pid: 100, fd: 22, path: '/dev/vfio/2' },
    { type: 'open', pid: 100, fd: 23, path: '/dev/vfio/40' },
    ...start.groups.map((g) => toEvent({ op: 'setc', g })),
    toEvent({ op: 'iommu', v2: start.v2 }),
    ...start.maps.map(toEvent),
    ...(start.deviceOpen ? [toEvent({ op: 'dev', open: true })] : []),
  ];
  const evs = [...prelude, ...ops.map(toEvent)];
  const text = [JSON.stringify(header), ...evs.map((e, i) => JSON.stringify({ seq: i + 1, ...e }))].join('\n');
  const { header: h, events } = parseTraceText(text);
  const model = new Replayer(BACKENDS[design]!, {});
  model.beginSegment(h);
  const oracle = new PageModel(design);
  // The memlock answer, computed independently: the reference model over the
  // same trace with every RLIMIT_MEMLOCK unlimited, and its highest locked_vm.
  const unlimited = new PageModel(design);
  let needed = 0;
  for (const e of events) {
    const o = model.apply(e);
    const want = oracle.apply(e);
    needed = Math.max(needed, unlimited.apply(e.type === 'process' && e.memlockLimit !== undefined ? { ...e, memlockLimit: 'unlimited' } : e).lockedVm);
    const got = {
      ret: o.ret,
      lockedVm: model.modelEnv!.processes.get(100)?.lockedVm ?? 0,
      findings: model
        .takeFindings()
        .map((f) => f.code as string)
        .filter((c) => !IGNORED.has(c))
        .sort(),
    };
    const what = e.type === 'ioctl' ? e.call.cmd : e.type;
    const key = `${what} ${got.ret < 0 ? got.ret : 'ok'}`;
    cov[key] = (cov[key] ?? 0) + 1;
    for (const f of got.findings) cov[f] = (cov[f] ?? 0) + 1;
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`${design} disagrees at seq ${e.seq} (${JSON.stringify(evs[e.seq - 1])}): model ${JSON.stringify(got)}, reference ${JSON.stringify(want)}\ntrace:\n${text}`);
    }
  }
  const answer = model.accounting().get(100)?.requiredPages ?? 0;
  if (answer !== needed) throw new Error(`${design}: memlock answer ${answer} pages, the reference with no limit peaks at ${needed}\ntrace:\n${text}`);
  if (model.accounting().get(100)?.refusals) cov.WHAT_IF = (cov.WHAT_IF ?? 0) + 1;
}

const startArb: fc.Arbitrary<Start> = fc.record({
  maps: fc.array(mapArb, { maxLength: 4 }),
  limit: fc.option(fc.integer({ min: 0, max: 64 }), { freq: 3 }),
  cap: fc.boolean(),
  groups: fc.oneof(
    { weight: 4, arbitrary: fc.shuffledSubarray([1, 2, 40] as (1 | 2 | 40)[], { minLength: 1 }).map((g) => (g.includes(40) ? g : [...g, 40 as const])) },
    { weight: 1, arbitrary: fc.shuffledSubarray([1, 2, 40] as (1 | 2 | 40)[], { minLength: 1 }) },
  ),
  v2: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  deviceOpen: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});

describe('the model against the page-granular reference model', () => {
  for (const design of ['upstream', 'rfc-v5', 'iommufd-compat'] as Design[]) {
    it(`${design}: same results, charges and findings after every event`, () => {
      const cov: Coverage = {};
      fc.assert(
        fc.property(startArb, fc.array(opArb, { minLength: 1, maxLength: 40 }), (start, ops) => {
          check(design, start, ops, cov);
        }),
        { numRuns: RUNS, seed: SEED },
      );
      // The sequences reach the interesting paths.
      for (const k of ['VFIO_IOMMU_MAP_DMA ok', 'VFIO_IOMMU_MAP_DMA -12', 'VFIO_IOMMU_UNMAP_DMA ok', 'pin ok', 'unpin ok', 'VFIO_GROUP_SET_CONTAINER ok', 'VFIO_GROUP_UNSET_CONTAINER ok', 'ACCT_LIMIT', 'UNPIN_NOT_PINNED', 'PIN_OUTSIDE_DMA']) {
        expect(cov[k] ?? 0, `${k} in ${JSON.stringify(cov)}`).toBeGreaterThan(10);
      }
      expect(cov.PIN_LEAK ?? 0, JSON.stringify(cov)).toBeGreaterThan(0);
      expect(cov.WHAT_IF ?? 0, 'sequences whose memlock answer comes from the what-if').toBeGreaterThan(10);
      if (design === 'rfc-v5') expect(cov.ACCT_DOUBLE_CHARGE ?? 0).toBeGreaterThan(3);
    });
  }
});
