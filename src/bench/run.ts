/**
 * `npm run bench`: every number measured in one run on this machine and
 * reported against a floor measured in the same run, never as a timed
 * assertion. Writes bench/results.json and prints the tables.
 *
 * - the floor: reading each generated .jsonl and JSON.parse of every line;
 * - replay (model only) per workload and design, as events/s and a ratio
 *   to the floor (target 0.5); ingest into SQLite (target 0.3);
 * - the cost of a 1 TiB mapping against a 4 KiB one (target < 2), and of
 *   map/unmap with 100,000 mappings in a container against 10;
 * - peak RSS of a 5 million event replay and ingest (target < 300 MB);
 * - audit queries on 1000 traces and 1,000,000 findings;
 * - the reference-model property test with many more runs than CI.
 *
 * PINLEDGER_BENCH_SCALE (default 1) scales the trace lengths down for a
 * quick look (0.1 = a tenth).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKEND_NAMES, BACKENDS } from '../model/backends/index.js';
import { Replayer } from '../model/replay/replayer.js';
import { parseTraceText } from '../trace/line-parser.js';
import { generate, type GenOptions, type Workload } from '../gen/workloads.js';
import { fileSink } from '../gen/writer.js';
import { buildLargeStore, timeQueries } from './queries.js';

const root = new URL('../..', import.meta.url).pathname;
const SCALE = Number(process.env.PINLEDGER_BENCH_SCALE ?? 1);
const TARGETS = { replay: 0.5, ingest: 0.3, bigMapping: 2, rssMb: 300 };

interface Row {
  measure: string;
  value: number;
  unit: string;
  ratio?: number;
  target?: string;
}

const rows: Row[] = [];
const log = (s: string) => process.stderr.write(s + '\n');

interface ChildResult {
  events: number;
  seconds: number;
  max_rss_mb: number;
}

/** One measured run in its own process (its peak RSS is its own). */
function child(mode: string, file: string, backend?: string, db?: string): Promise<ChildResult> {
  const args = [join(root, 'dist/bench/child.js'), mode, file, ...(backend ? [backend] : []), ...(db ? [db] : [])];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as ChildResult) : reject(new Error(`bench child ${mode} ${file}: ${err}`))));
  });
}

/** Runs the jobs two at a time, one per core of this 2-core machine; results in job order. */
async function pool<T>(jobs: (() => Promise<T>)[], width = 2): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return out;
}

async function gen(dir: string, w: Workload, events: number): Promise<string> {
  const file = join(dir, `${w}.jsonl`);
  const o: GenOptions = { seed: 1, traceId: `bench/${w}`, ram: 16n << 30n, events, numa: 2, hotplug: 2, devices: 2, batch: 16, workingSet: 65536, memlock: 'unlimited' };
  await generate(w, o, fileSink(file));
  return file;
}

/** Map/unmap cycles of one mapping (at 1 TiB, clear of the MSI window) in a container already holding `background` mappings; seconds per cycle. */
function mapCost(size: bigint, background: number, cycles: number): number {
  const hx = (v: bigint) => '0x' + v.toString(16);
  const lines: string[] = [JSON.stringify({ type: 'header', format: 'vfio-trace', version: 1, trace_id: 'cost', module_params: { dma_entry_limit: 200000 } })];
  let seq = 0;
  const ev = (o: Record<string, unknown>) => lines.push(JSON.stringify({ seq: ++seq, ...o }));
  ev({ type: 'process', pid: 1, op: 'start', memlock_limit: 'unlimited', cap_ipc_lock: false });
  ev({ type: 'mmap', pid: 1, vaddr: '0x7e0000000000', size: hx(1n << 40n), backing: 'anon' });
  ev({ type: 'mmap', pid: 1, vaddr: '0x100000000000', size: hx(1n << 30n), backing: 'anon' });
  ev({ type: 'open', pid: 1, fd: 3, path: '/dev/vfio/vfio' });
  ev({ type: 'open', pid: 1, fd: 4, path: '/dev/vfio/1' });
  ev({ type: 'ioctl', pid: 1, fd: 4, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 3 } });
  ev({ type: 'ioctl', pid: 1, fd: 3, cmd: 'VFIO_SET_IOMMU', arg: 'VFIO_TYPE1v2_IOMMU' });
  for (let i = 0; i < background; i++) {
    ev({ type: 'ioctl', pid: 1, fd: 3, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: ['READ', 'WRITE'], vaddr: hx(0x100000000000n + (BigInt(i) << 12n)), iova: hx(0x100000000000n + (BigInt(i) << 12n)), size: '0x1000' } });
  }
  const { header, events } = parseTraceText(lines.join('\n'));
  const r = new Replayer(BACKENDS.upstream!);
  r.beginSegment(header);
  for (const e of events) {
    const ret = r.apply(e).ret;
    if (ret < 0) throw new Error(`bench setup event ${e.seq} failed: ${ret}`);
  }
  const cyc = parseTraceText(
    [
      lines[0]!,
      JSON.stringify({ seq: seq + 1, type: 'ioctl', pid: 1, fd: 3, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: ['READ', 'WRITE'], vaddr: '0x7e0000000000', iova: '0x10000000000', size: hx(size) } }),
      JSON.stringify({ seq: seq + 2, type: 'ioctl', pid: 1, fd: 3, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: [], iova: '0x10000000000', size: hx(size) } }),
    ].join('\n'),
  ).events;
  const [m, u] = cyc as [(typeof cyc)[0], (typeof cyc)[0]];
  let s = seq;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < cycles; i++) {
    m.seq = ++s;
    u.seq = ++s;
    const mapped = r.apply(m).ret;
    const unmapped = r.apply(u).ret;
    if (mapped !== 0 || unmapped !== 0) throw new Error(`bench map/unmap of ${hx(size)} failed: ${mapped} ${unmapped}`);
  }
  return Number(process.hrtime.bigint() - t0) / 1e9 / cycles;
}

async function main(): Promise<void> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'pinledger-bench-'));
  const n = (x: number) => Math.max(1000, Math.round(x * SCALE));
  log('generating traces...');
  const traces: [Workload, string][] = [
    ['vm-boot', await gen(dir, 'vm-boot', n(1_000_000))],
    ['vgpu-churn', await gen(dir, 'vgpu-churn', n(5_000_000))],
    ['mixed', await gen(dir, 'mixed', n(1_000_000))],
  ];
  // Every child of every workload, two at a time: the floor runs under the
  // same load as the replays it is compared with.
  const jobs: { w: Workload; file: string; mode: string; backend?: string }[] = [];
  for (const [w, file] of traces) {
    jobs.push({ w, file, mode: 'floor' });
    for (const b of BACKEND_NAMES) jobs.push({ w, file, mode: 'replay', backend: b });
    jobs.push({ w, file, mode: 'ingest', backend: 'upstream' });
  }
  const results = await pool(
    jobs.map((j, i) => () => {
      log(`${j.mode} ${j.w}${j.backend ? ' ' + j.backend : ''}...`);
      return child(j.mode, j.file, j.backend, j.mode === 'ingest' ? join(dir, `${j.w}-${i}.db`) : undefined);
    }),
  );
  let floorRate = 0;
  jobs.forEach((j, i) => {
    const r = results[i]!;
    const rate = r.events / r.seconds;
    if (j.mode === 'floor') {
      floorRate = rate;
      rows.push({ measure: `floor ${j.w} (${r.events} events, ${Math.round(statSync(j.file).size / 1e6)} MB)`, value: Math.round(rate), unit: 'events/s' });
    } else if (j.mode === 'replay') {
      rows.push({ measure: `replay ${j.w} ${j.backend}`, value: Math.round(rate), unit: 'events/s', ratio: round(rate / floorRate), target: `>= ${TARGETS.replay}` });
      if (j.w === 'vgpu-churn' && j.backend === 'upstream') rows.push({ measure: `peak RSS, replay of ${r.events} events`, value: r.max_rss_mb, unit: 'MB', target: `< ${TARGETS.rssMb}` });
    } else {
      rows.push({ measure: `ingest ${j.w} upstream`, value: Math.round(rate), unit: 'events/s', ratio: round(rate / floorRate), target: `>= ${TARGETS.ingest}` });
      if (j.w === 'vgpu-churn') rows.push({ measure: `peak RSS, ingest of ${r.events} events`, value: r.max_rss_mb, unit: 'MB', target: `< ${TARGETS.rssMb}` });
    }
  });

  log('mapping costs...');
  const small = mapCost(4096n, 10, 20000);
  const big = mapCost(1n << 40n, 10, 20000);
  rows.push({ measure: 'map+unmap of 1 TiB vs 4 KiB', value: Math.round(big * 1e9), unit: 'ns (1 TiB)', ratio: round(big / small), target: `< ${TARGETS.bigMapping}` });
  const few = mapCost(4096n, 10, 20000);
  const many = mapCost(4096n, 100_000, 20000);
  rows.push({ measure: 'map+unmap with 100,000 vs 10 mappings', value: Math.round(many * 1e9), unit: 'ns (100,000)', ratio: round(many / few) });

  log('queries on 1000 traces and 1,000,000 findings...');
  const store = buildLargeStore();
  const queries = timeQueries(store);
  for (const q of queries) rows.push({ measure: `query ${q.query}`, value: round(q.ms), unit: 'ms', target: '< 1000' });

  log('reference model, many runs...');
  const oracle = spawnSync('npx', ['vitest', 'run', 'test/oracle'], { cwd: root, encoding: 'utf8', env: { ...process.env, PINLEDGER_ORACLE_RUNS: String(n(5000)), PINLEDGER_ORACLE_SEED: String(Date.now() % 100000) } });
  rows.push({ measure: `reference model: ${n(5000)} random sequences per design`, value: oracle.status === 0 ? 1 : 0, unit: oracle.status === 0 ? 'agree' : 'DISAGREE' });
  if (oracle.status !== 0) log(oracle.stdout.slice(-3000));

  const seconds = Math.round((Date.now() - started) / 1000);
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  console.table(rows.map((r) => ({ measure: r.measure, value: r.value, unit: r.unit, ratio: r.ratio ?? '', target: r.target ?? '' })));
  log(`bench took ${seconds} s on ${machine}`);
  mkdirSync(join(root, 'bench'), { recursive: true });
  writeFileSync(join(root, 'bench/results.json'), JSON.stringify({ date: new Date().toISOString(), machine, seconds, scale: SCALE, rows }, null, 2) + '\n');
  rmSync(dir, { recursive: true, force: true });
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

await main();
