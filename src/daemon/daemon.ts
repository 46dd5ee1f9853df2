/**
 * The drop-folder daemon. In order, before anything is ingested: the
 * database's lock (one daemon per database: a second one is refused,
 * naming the holder, before it touches the folder), the folder's
 * processed/ and quarantine/ (real directories owned by the daemon's euid,
 * or it refuses to start), the store. Then fs.watch on the folder reports names only;
 * one sweep timer takes a file once its size and mtime have stayed the
 * same for --stable-ms (or renamed in from *.tmp / *.partial, which are
 * ignored; files already there at start too), and the runner ingests it,
 * moves it, records it and logs one line. (chokidar is not used: it
 * watched and stat'ed every file, and its close left watchers behind.) Store faults: retried when
 * transient, one `fatal` line and exit 1 when not. The WAL is truncated
 * when idle after an ingest and every 60 s. The first SIGTERM or SIGINT
 * rolls back the file in progress (the reader and the hash look for it
 * per chunk, so within a second) and exits 0; a second exits 130 at once.
 */
import { mkdirSync, readdirSync, watch } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { openStore, type Db } from '../store/db.js';
import { FileLedger } from '../store/files.js';
import { Ingestor } from '../store/ingest.js';
import type { IngestLimits } from '../store/limits.js';
import { StoreLockedError, acquireStoreLock } from '../store/lock.js';
import { StoreFault, storeFault } from '../store/store-error.js';
import { CAPTURED_DESIGN, driversFor } from '../replay/designs.js';
import { UsageError } from '../cli/usage-error.js';
import { BUSY_TIMEOUT_MS, CHECKPOINT_EVERY_MS, checkpoint } from './checkpoint.js';
import { type DropFolder, checkFolders } from './folders.js';
import { IngestRunner, type TakeResult } from './runner.js';
import { StabilitySweep } from './stability.js';

export interface DaemonConfig {
  watch: string;
  db: string;
  /** How long a file's size and mtime must stay unchanged before it is taken, ms. */
  stableMs: number;
  /** The kernel release new traces are replayed as (--kernel), overriding their headers'. */
  kernel?: string;
  /** --max-file-size and the other limits (src/store/limits.ts). */
  limits?: Partial<IngestLimits>;
}

/** Trace files: .jsonl or .jsonl.gz (also .json), never the temporaries. */
export function isTraceFile(path: string): boolean {
  const name = basename(path);
  if (name.startsWith('.') || name.endsWith('.tmp') || name.endsWith('.partial') || name.endsWith('.reason.txt')) return false;
  return /\.(jsonl|json)(\.gz)?$/.test(name);
}

/** One log line per file. */
function logResult(log: Logger, r: TakeResult): void {
  const fields: Record<string, unknown> = { file: basename(r.file), status: r.status, trace: r.traceId, segment: r.segment, events: r.events, findings: r.findings, duration_ms: r.durationMs };
  if (r.reason !== undefined) fields.reason = r.reason;
  if (r.movedTo !== undefined) fields.moved_to = r.movedTo;
  if (r.status === 'quarantined' || r.status === 'rejected' || r.status === 'unreadable') log.warn(fields, r.status);
  else log.info(fields, r.status);
}

/** The one line of a store fault that stops the daemon (systemd's Restart=on-failure starts it again). */
function fatalExit(log: Logger, file: string | undefined, fault: StoreFault): never {
  log.fatal({ ...(file === undefined ? {} : { file: basename(file) }), code: fault.code, err: fault.message }, 'fatal');
  log.flush();
  process.exit(1);
}

export async function runDaemon(cfg: DaemonConfig, log: Logger): Promise<number> {
  const dir = resolve(cfg.watch);
  let release: () => void;
  try {
    release = acquireStoreLock(cfg.db, 'daemon');
  } catch (e) {
    if (e instanceof StoreLockedError) throw new UsageError(e.message);
    throw e;
  }
  let folder: DropFolder;
  let db: Db;
  try {
    mkdirSync(dir, { recursive: true });
    folder = checkFolders(dir);
    db = openStore(cfg.db);
  } catch (e) {
    release();
    const f = storeFault(e);
    if (f) fatalExit(log, undefined, f);
    throw e;
  }
  // Waits for a lock block the event loop: short ones, retried (src/daemon/retry.ts).
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  let stopping = false;
  const ingestor = new Ingestor(db, {
    drivers: (h) => driversFor('auto', h),
    capturedDesign: CAPTURED_DESIGN,
    shouldStop: () => stopping,
    ...(cfg.kernel === undefined ? {} : { kernel: cfg.kernel }),
    ...(cfg.limits === undefined ? {} : { limits: cfg.limits }),
  });
  let sweep!: StabilitySweep;
  let wroteSinceCheckpoint = false;
  const runner = new IngestRunner({
    ingestor,
    ledger: new FileLedger(db),
    log,
    folder,
    onResult: (r) => {
      if (r.status !== 'aborted') wroteSinceCheckpoint = true;
      logResult(log, r);
    },
    onFatal: (file, fault) => fatalExit(log, file, fault),
    park: (p) => sweep.park(p),
    retake: (p) => sweep.note(p),
  });
  const walUpkeep = (why: 'idle' | 'periodic') => {
    if (stopping || !runner.isIdle()) return;
    if (why === 'idle' && !wroteSinceCheckpoint) return;
    wroteSinceCheckpoint = false;
    checkpoint(db, log, why);
  };
  sweep = new StabilitySweep(cfg.stableMs, {
    stable: (path) => {
      void runner.submit(path).then(
        () => walUpkeep('idle'),
        (e: unknown) => log.error({ file: basename(path), err: e instanceof Error ? e.message : String(e) }, 'internal error taking the file'),
      );
    },
    error: (path, e) => log.warn({ file: basename(path), code: e.code }, 'cannot stat the file: dropped until it changes'),
  });
  const periodic = setInterval(() => walUpkeep('periodic'), CHECKPOINT_EVERY_MS);

  // One inotify watch on the folder (names only; no per-file watchers, no stat of what lands there), then the names already there.
  const noted = (name: string | null) => {
    if (name === null || name.includes('/') || !isTraceFile(name)) return;
    sweep.note(join(dir, name));
  };
  const watcher = watch(dir, { persistent: true }, (_event, name) => noted(name));
  watcher.on('error', (e) => log.error({ err: e instanceof Error ? e.message : String(e) }, 'watcher error'));
  for (const name of readdirSync(dir)) noted(name);
  // The signals are handled from here on, also while the watcher starts.
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
    sweep.stop();
    clearInterval(periodic);
    log.info({ signal }, 'stopping');
    watcher.close();
    void runner
      .idle()
      .then(() => {
        db.close();
        release();
        log.info('stopped');
        log.flush();
        stopped(0);
      })
      .catch((e: unknown) => {
        log.error({ err: e instanceof Error ? e.message : String(e) }, 'error while stopping');
        log.flush();
        stopped(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (!stopping) log.info({ watch: dir, db: resolve(cfg.db) }, 'ready');
  return done;
}
