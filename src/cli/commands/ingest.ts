/**
 * `pinledger ingest FILE...`: what the daemon does, for files named on the
 * command line (the files are not moved). Regular files only (a symlink,
 * FIFO or device named is refused, never read). Holds the database's lock
 * while it works: refused at once when a daemon holds it (drop the files
 * into its folder instead), waits up to 60 s while another `ingest` does.
 * Exit 0 when every file was ingested or already was, 2 when one was bad,
 * could not be read, or still waits for a predecessor, or the store failed.
 */
import { lstatSync } from 'node:fs';
import { basename } from 'node:path';
import { SingleBar } from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import { IngestRunner, type RunnerLog, type TakeResult } from '../../daemon/runner.js';
import { openStore } from '../../store/db.js';
import { FileLedger } from '../../store/files.js';
import { Ingestor } from '../../store/ingest.js';
import { StoreLockedError, waitForStoreLock } from '../../store/lock.js';
import type { StoreFault } from '../../store/store-error.js';
import { CAPTURED_DESIGN, driversFor } from '../../replay/designs.js';
import { backendSpec } from './replay.js';
import { kernelOption } from '../kernel-arg.js';
import { type LimitArgs, limitOptions, limitsFromArgs } from '../limit-options.js';
import { checkStoreFile, dbOption } from '../query-args.js';
import { UsageError, backendArg, existingFiles } from '../usage-error.js';
import { plural, thousands } from '../format.js';

interface Args extends LimitArgs {
  files: string[];
  db: string;
  backend: string;
  kernel?: string;
}

/** Files smaller than this get no progress bar. */
const BAR_MIN_BYTES = 16 << 20;
/** How long `ingest` waits for another `ingest` holding the database. */
export const INGEST_LOCK_WAIT_MS = 60_000;

/** Retries and move errors, one line each on stderr. */
const stderrLog: RunnerLog = {
  info: () => undefined,
  warn: (f, msg) => process.stderr.write(`pinledger: ${describe(f)}${msg}\n`),
  error: (f, msg) => process.stderr.write(`pinledger: ${describe(f)}${msg}\n`),
};

function describe(f: object): string {
  const o = f as { file?: string; err?: string; attempt?: number; retry_in_ms?: number };
  return `${o.file ? `${o.file}: ` : ''}${o.err ? `${o.err}: ` : ''}${o.attempt !== undefined ? `attempt ${o.attempt}, ` : ''}${o.retry_in_ms !== undefined ? `next in ${o.retry_in_ms} ms, ` : ''}`;
}

export const ingestCommand: CommandModule<object, Args> = {
  command: 'ingest <files..>',
  describe: 'Ingest trace files into the database, as the daemon would',
  builder: (y: Argv) =>
    limitOptions(y)
      .positional('files', { type: 'string', array: true, demandOption: true, describe: 'segment files (.jsonl or .jsonl.gz)', coerce: existingFiles('trace file') })
      .option('db', dbOption)
      .option('backend', { type: 'string', default: 'auto', describe: 'designs for new traces: upstream, rfc-v5, iommufd-compat, comma separated, all, or auto', coerce: backendArg })
      .option('kernel', { ...kernelOption, describe: `${kernelOption.describe}; applies to traces the database has not seen before` })
      .example('$0 ingest seg0.jsonl seg1.jsonl.gz', 'two segments of a capture')
      .example('$0 ingest capture.jsonl --db /srv/pinledger.db --backend all', 'into another database, through every design')
      .example('$0 ingest imported.jsonl --kernel 6.1.0-57-amd64', "held to Debian 12's kernel (the zero page not charged)")
      .epilogue('Refused (exit 2) while a daemon holds the database; waits up to 60 s while another ingest does.') as unknown as Argv<Args>,
  handler: async (args) => {
    const spec = backendSpec(args.backend);
    const limits = limitsFromArgs(args);
    // Refused before the database is created: a file that is not ours.
    checkStoreFile(args.db);
    let release: () => void;
    try {
      release = await waitForStoreLock(args.db, 'ingest', INGEST_LOCK_WAIT_MS, (h) =>
        process.stderr.write(`pinledger: ${args.db} is in use by pinledger ingest${h ? ` pid ${h.pid}` : ''}: waiting up to ${INGEST_LOCK_WAIT_MS / 1000} s\n`),
      );
    } catch (e) {
      if (e instanceof StoreLockedError) throw new UsageError(e.holder?.role === 'ingest' ? `${e.message}: still held after ${INGEST_LOCK_WAIT_MS / 1000} s` : e.message);
      throw e;
    }
    try {
      await ingestFiles(args, spec, limits);
    } finally {
      release();
    }
  },
};

async function ingestFiles(args: Args, spec: ReturnType<typeof backendSpec>, limits: ReturnType<typeof limitsFromArgs>): Promise<void> {
  const db = openStore(args.db);
  let bar: SingleBar | undefined;
  const ingestor = new Ingestor(db, {
    drivers: (h) => driversFor(spec, h),
    capturedDesign: CAPTURED_DESIGN,
    onProgress: (bytes) => bar?.update(bytes),
    limits,
    ...(args.kernel === undefined ? {} : { kernel: args.kernel }),
  });
  const results: TakeResult[] = [];
  let fatal: { file: string; fault: StoreFault } | undefined;
  const runner = new IngestRunner({
    ingestor,
    ledger: new FileLedger(db),
    log: stderrLog,
    onFatal: (file, fault) => (fatal = { file, fault }),
    onResult: (r) => {
      bar?.stop();
      bar = undefined;
      results.push(r);
      const where = r.traceId === undefined ? '' : ` trace ${r.traceId} segment ${r.segment}`;
      const what = r.status === 'ingested' ? `${plural(r.events, 'event')}, ${plural(r.findings, 'finding')}, ${thousands(r.durationMs)} ms` : (r.reason ?? '');
      process.stdout.write(`${basename(r.file)}: ${r.status}${where}${what ? ` (${what})` : ''}\n`);
    },
  });
  for (const f of args.files) {
    const st = lstatSync(f, { throwIfNoEntry: false });
    if (process.stderr.isTTY && st?.isFile() && st.size >= BAR_MIN_BYTES) {
      bar = new SingleBar({ format: `${basename(f)} [{bar}] {percentage}% {value}/{total} bytes`, stream: process.stderr });
      bar.start(st.size, 0);
    }
    await runner.submit(f);
    if (fatal) break;
  }
  await runner.idle();
  bar?.stop();
  db.close();
  if (fatal) throw new UsageError(`${basename(fatal.file)}: ${fatal.fault.message}`);
  const waiting = runner.pending();
  for (const w of waiting) process.stderr.write(`pinledger: ${basename(w.file)} still waits for segment ${w.segment - 1} of trace ${w.traceId}\n`);
  const bad = results.some((r) => r.status !== 'ingested' && r.status !== 'duplicate' && r.status !== 'waiting') || waiting.length > 0;
  process.exitCode = bad ? 2 : 0;
}
