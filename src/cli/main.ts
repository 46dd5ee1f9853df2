/**
 * The pinledger command line. Exit status: 0 no error findings, 1 error
 * findings, 2 bad input or usage.
 */
import { existsSync, readFileSync } from 'node:fs';
import yargs from 'yargs';
import { TraceError } from '../trace/trace-error.js';
import { daemonCommand } from './commands/daemon.js';
import { ingestCommand } from './commands/ingest.js';
import { replayCommand } from './commands/replay.js';
import { accountingCommand, diffCommand, findingsCommand, sqlCommand, stateCommand, tracesCommand } from './commands/queries.js';
import { QueryError } from '../store/queries.js';
import { reportCommand } from './commands/report.js';
import { genCommand } from './commands/gen.js';
import { importCommand } from './commands/import.js';
import { labCommand } from './commands/lab.js';
import { UsageError } from './usage-error.js';

const DEFAULT_CONFIG = 'pinledger.config.json';

export async function main(argv: string[]): Promise<number> {
  let usageFailure: string | undefined;
  try {
    await yargs(argv)
      .scriptName('pinledger')
      .command(replayCommand)
      .command(ingestCommand)
      .command(daemonCommand)
      .command(tracesCommand)
      .command(findingsCommand)
      .command(accountingCommand)
      .command(stateCommand)
      .command(diffCommand)
      .command(sqlCommand)
      .command(reportCommand)
      .command(genCommand)
      .command(importCommand)
      .command(labCommand)
      // Options also come from PINLEDGER_* variables and a JSON config file.
      .env('PINLEDGER')
      .config('config', 'a JSON file of options, e.g. {"watch": "...", "db": "..."} (default ./pinledger.config.json if present)', (path) => JSON.parse(readFileSync(path, 'utf8')) as object)
      .default('config', existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined, DEFAULT_CONFIG)
      .demandCommand(1, 'Name a command; see --help')
      .strict()
      .fail((msg, err) => {
        if (err) throw err;
        usageFailure = msg;
      })
      .help()
      .version()
      .parseAsync();
  } catch (e) {
    if (e instanceof TraceError) {
      process.stderr.write(`pinledger: bad trace: ${e.message}\n`);
      return 2;
    }
    if (e instanceof UsageError || e instanceof QueryError) {
      process.stderr.write(`pinledger: ${e.message}\n`);
      return 2;
    }
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`pinledger: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
  if (usageFailure !== undefined) {
    process.stderr.write(`pinledger: ${usageFailure}\nRun pinledger --help for usage.\n`);
    return 2;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
