/**
 * `pinledger ingest FILE...`: what the daemon does, for files named on the
 * command line (the files are not moved). Exit 0 when every file was
 * ingested or already was, 2 when one was bad or still waits for a
 * predecessor.
 */
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { SingleBar } from 'cli-progress';
import type { Argv, CommandModule } from 'yargs';
import { IngestRunner } from '../../daemon/runner.js';
import { openStore } from '../../store/db.js';
import { Ingestor, type IngestResult } from '../../store/ingest.js';
import { CAPTURED_DESIGN, driversFor } from '../../replay/designs.js';
import { backendSpec } from './replay.js';
import { kernelOption } from '../kernel-arg.js';
import { checkStoreFile, dbOption } from '../query-args.js';
import { backendArg, existingFiles } from '../usage-error.js';
import { plural, thousands } from '../format.js';

interface Args {
  files: string[];
  db: string;
  backend: string;
  kernel?: string;
}

/** Files smaller than this get no progress bar. */
const BAR_MIN_BYTES = 16 << 20;

export const ingestCommand: CommandModule<object, Args> = {
  command: 'ingest <files..>',
  describe: 'Ingest trace files into the database, as the daemon would',
  builder: (y: Argv) =>
    y
      .positional('files', { type: 'string', array: true, demandOption: true, describe: 'segment files (.jsonl or .jsonl.gz)', coerce: existingFiles('trace file') })
      .option('db', dbOption)
      .option('backend', { type: 'string', default: 'auto', describe: 'designs for new traces: upstream, rfc-v5, iommufd-compat, comma separated, all, or auto', coerce: backendArg })
      .option('kernel', { ...kernelOption, describe: `${kernelOption.describe}; applies to traces the database has not seen before` })
      .example('$0 ingest seg0.jsonl seg1.jsonl.gz', 'two segments of a capture')
      .example('$0 ingest capture.jsonl --db /srv/pinledger.db --backend all', 'into another database, through every design')
      .example('$0 ingest imported.jsonl --kernel 6.1.0-57-amd64', "held to Debian 12's kernel (the zero page not charged)") as unknown as Argv<Args>,
  handler: async (args) => {
    const spec = backendSpec(args.backend);
    // Refused before the database is created: a file that is not ours.
    checkStoreFile(args.db);
    const db = openStore(args.db);
    let bar: SingleBar | undefined;
    const ingestor = new Ingestor(db, {
      drivers: (h) => driversFor(spec, h),
      capturedDesign: CAPTURED_DESIGN,
      onProgress: (bytes) => bar?.update(bytes),
      ...(args.kernel === undefined ? {} : { kernel: args.kernel }),
    });
    const results: IngestResult[] = [];
    const runner = new IngestRunner(ingestor, (r) => {
      bar?.stop();
      bar = undefined;
      results.push(r);
      const where = r.traceId === undefined ? '' : ` trace ${r.traceId} segment ${r.segment}`;
      const what = r.status === 'ingested' ? `${plural(r.events, 'event')}, ${plural(r.findings, 'finding')}, ${thousands(r.durationMs)} ms` : (r.reason ?? '');
      process.stdout.write(`${basename(r.file)}: ${r.status}${where}${what ? ` (${what})` : ''}\n`);
    });
    for (const f of args.files) {
      const size = statSync(f).size;
      if (process.stderr.isTTY && size >= BAR_MIN_BYTES) {
        bar = new SingleBar({ format: `${basename(f)} [{bar}] {percentage}% {value}/{total} bytes`, stream: process.stderr });
        bar.start(size, 0);
      }
      await runner.submit(f);
    }
    await runner.idle();
    db.close();
    const waiting = runner.pending();
    for (const w of waiting) process.stderr.write(`pinledger: ${basename(w.file)} still waits for segment ${w.segment - 1} of trace ${w.traceId}\n`);
    const bad = results.some((r) => r.status === 'quarantined') || waiting.length > 0;
    process.exitCode = bad ? 2 : 0;
  },
};
