/**
 * The drop-folder daemon: watches a folder with chokidar, takes each
 * complete file (size stable, or renamed in from *.tmp / *.partial, which
 * are ignored; files already there at start too), ingests it, moves it to
 * processed/ or quarantine/, and logs one line per file. The first SIGTERM
 * or SIGINT rolls back the file in progress and exits 0; a second exits at
 * once (SQLite discards the open transaction).
 */
import { mkdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { watch } from 'chokidar';
import type { Logger } from 'pino';
import { openStore } from '../store/db.js';
import { Ingestor, type IngestResult } from '../store/ingest.js';
import { CAPTURED_DESIGN, driversFor } from '../replay/designs.js';
import { IngestRunner } from './runner.js';

export interface DaemonConfig {
  watch: string;
  db: string;
  /** How long a file's size must stay unchanged before it is taken, ms. */
  stableMs: number;
  /** The kernel release new traces are replayed as (--kernel), overriding their headers'. */
  kernel?: string;
}

/** Trace files: .jsonl or .jsonl.gz (also .json), never the temporaries. */
export function isTraceFile(path: string): boolean {
  const name = basename(path);
  if (name.startsWith('.') || name.endsWith('.tmp') || name.endsWith('.partial') || name.endsWith('.reason.txt')) return false;
  return /\.(jsonl|json)(\.gz)?$/.test(name);
}

export async function runDaemon(cfg: DaemonConfig, log: Logger): Promise<number> {
  const dir = resolve(cfg.watch);
  mkdirSync(dir, { recursive: true });
  const db = openStore(cfg.db);
  let stopping = false;
  const ingestor = new Ingestor(db, {
    drivers: (h) => driversFor('auto', h),
    capturedDesign: CAPTURED_DESIGN,
    shouldStop: () => stopping,
    ...(cfg.kernel === undefined ? {} : { kernel: cfg.kernel }),
  });
  const logResult = (r: IngestResult) => {
    const fields = { file: basename(r.file), status: r.status, trace: r.traceId, segment: r.segment, events: r.events, findings: r.findings, duration_ms: r.durationMs };
    if (r.status === 'quarantined') log.warn({ ...fields, reason: r.reason }, 'quarantined');
    else if (r.status === 'waiting') log.info({ ...fields, reason: r.reason }, 'waiting');
    else log.info(fields, r.status);
  };
  const runner = new IngestRunner(ingestor, logResult, { processed: join(dir, 'processed'), quarantine: join(dir, 'quarantine') });

  const watcher = watch(dir, {
    ignoreInitial: false,
    depth: 0,
    ignored: (path, stats) => path !== dir && (stats?.isDirectory() === true || (stats?.isFile() === true && !isTraceFile(path))),
    awaitWriteFinish: { stabilityThreshold: cfg.stableMs, pollInterval: Math.max(10, Math.floor(cfg.stableMs / 4)) },
  });
  const take = (path: string) => {
    if (!isTraceFile(path) || resolve(path, '..') !== dir) return;
    runner.submit(path).catch((e: unknown) => log.error({ err: e, file: basename(path) }, 'ingest failed'));
  };
  watcher.on('add', take);
  watcher.on('change', take);
  watcher.on('error', (e) => log.error({ err: e }, 'watcher error'));
  // The signals are handled from here on, also while the watcher starts:
  // a SIGTERM at any moment after the store is open exits 0.
  let stopped!: (code: number) => void;
  const done = new Promise<number>((res) => (stopped = res));
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      log.flush();
      process.exit(130);
    }
    stopping = true;
    runner.stop();
    log.info({ signal }, 'stopping');
    void watcher
      .close()
      .then(() => runner.idle())
      .then(() => {
        db.close();
        log.info('stopped');
        log.flush();
        stopped(0);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await Promise.race([new Promise<void>((res) => watcher.once('ready', () => res())), done]);
  if (!stopping) log.info({ watch: dir, db: resolve(cfg.db) }, 'ready');
  return done;
}
