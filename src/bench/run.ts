/**
 * `npm run bench`: replay speed against the floor (reading the same file
 * and JSON.parse of every line), measured in one run on a generated
 * map/unmap churn trace. Prints a table and writes bench/results.json.
 */
import { createReadStream, mkdirSync, mkdtempSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { BACKENDS } from '../model/backends/index.js';
import { replayFiles } from '../replay/replay-files.js';
import { buildLargeStore, timeQueries } from './queries.js';

const EVENTS = Number(process.env.PINLEDGER_BENCH_EVENTS ?? 500_000);

async function writeChurn(file: string, n: number): Promise<void> {
  const out = createWriteStream(file);
  const w = (o: unknown) => out.write(JSON.stringify(o) + '\n') || once(out, 'drain');
  await w({ type: 'header', format: 'vfio-trace', version: 1, trace_id: 'bench/churn' });
  let seq = 0;
  const pid = 1;
  await w({ type: 'process', seq: ++seq, pid, op: 'start', memlock_limit: 'unlimited' });
  await w({ type: 'open', seq: ++seq, pid, fd: 3, path: '/dev/vfio/vfio' });
  await w({ type: 'open', seq: ++seq, pid, fd: 4, path: '/dev/vfio/1' });
  await w({ type: 'ioctl', seq: ++seq, pid, fd: 4, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 3 } });
  await w({ type: 'ioctl', seq: ++seq, pid, fd: 3, cmd: 'VFIO_SET_IOMMU', arg: 'VFIO_TYPE1v2_IOMMU' });
  // A vIOMMU guest: 1024 live 2 MiB mappings, each unmapped and mapped again.
  for (let i = 0; seq < n; i++) {
    const slot = BigInt(i % 1024);
    const iova = '0x' + ((slot + 1n) << 21n).toString(16);
    const vaddr = '0x' + (0x7f0000000000n + (slot << 21n)).toString(16);
    if (i >= 1024) await w({ type: 'ioctl', seq: ++seq, pid, fd: 3, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: [], iova, size: '0x200000' }, ret: 0, out: { size: '0x200000' } });
    await w({ type: 'ioctl', seq: ++seq, pid, fd: 3, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: ['READ', 'WRITE'], vaddr, iova, size: '0x200000' }, ret: 0 });
  }
  out.end();
  await once(out, 'finish');
}

async function floor(file: string): Promise<number> {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  for await (const l of rl) {
    JSON.parse(l);
    n++;
  }
  return n;
}

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = process.hrtime.bigint();
  const value = await f();
  return { value, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pinledger-bench-'));
  const file = join(dir, 'churn.jsonl');
  await writeChurn(file, EVENTS);
  const f = await timed(() => floor(file));
  const rows: Record<string, number | string>[] = [];
  const floorRate = f.value / f.seconds;
  rows.push({ measure: 'floor: read + JSON.parse', events_per_s: Math.round(floorRate), ratio_to_floor: 1 });
  for (const [name, driver] of Object.entries(BACKENDS)) {
    const r = await timed(() => replayFiles([file], new Map([[name, driver]])));
    const rate = f.value / r.seconds;
    rows.push({ measure: `replay churn (${name})`, events_per_s: Math.round(rate), ratio_to_floor: Number((rate / floorRate).toFixed(3)) });
  }
  rows.push({ measure: 'peak RSS (MB)', events_per_s: Math.round(process.memoryUsage().rss / 1e6), ratio_to_floor: '' });
  console.table(rows);
  const store = buildLargeStore();
  const queries = timeQueries(store);
  console.table(queries.map((q) => ({ query: q.query, ms: Number(q.ms.toFixed(1)), rows: q.rows })));
  mkdirSync('bench', { recursive: true });
  writeFileSync('bench/results.json', JSON.stringify({ date: new Date().toISOString(), events: f.value, rows, queries }, null, 2) + '\n');
}

await main();
