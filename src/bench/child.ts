/**
 * One measured run in its own process, so its peak RSS is its own:
 * `node dist/bench/child.js floor|replay|ingest FILE [BACKEND] [DB]`.
 * Prints {"events", "seconds", "max_rss_mb"} on one line.
 */
import { createReadStream } from 'node:fs';
import { BACKENDS } from '../model/backends/index.js';
import { replayFiles } from '../replay/replay-files.js';
import { openStore } from '../store/db.js';
import { Ingestor } from '../store/ingest.js';
import { CAPTURED_DESIGN, driversFor } from '../replay/designs.js';

/** The floor: the same chunked read and line split as the reader, and JSON.parse of every line. */
async function floor(file: string): Promise<number> {
  let n = 0;
  let rest = '';
  const input = createReadStream(file, { highWaterMark: 1 << 20 });
  input.setEncoding('utf8');
  for await (const chunk of input as AsyncIterable<string>) {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    for (const l of parts) {
      if (l !== '') {
        JSON.parse(l);
        n++;
      }
    }
  }
  if (rest !== '') (JSON.parse(rest), n++);
  return n - 1;
}

async function main(): Promise<void> {
  const [mode, file, backend, db] = process.argv.slice(2) as [string, string, string | undefined, string | undefined];
  const t0 = process.hrtime.bigint();
  let events = 0;
  if (mode === 'floor') events = await floor(file);
  else if (mode === 'replay') {
    const [t] = await replayFiles([file], new Map([[backend!, BACKENDS[backend!]!]]));
    events = t!.replayers.get(backend!)!.events;
  } else {
    const store = openStore(db!);
    const ing = new Ingestor(store, { drivers: (h) => driversFor([backend!], h), capturedDesign: CAPTURED_DESIGN });
    const r = await ing.ingest(file);
    if (r.status !== 'ingested') throw new Error(`ingest: ${r.status} ${r.reason ?? ''}`);
    events = r.events;
    store.close();
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(JSON.stringify({ events, seconds, max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }) + '\n');
}

await main();
