/**
 * The pinledger command line. Exit status: 0 no error findings, 1 error
 * findings, 2 bad input or usage.
 */
import yargs from 'yargs';
import { TraceError } from '../trace/trace-error.js';
import { replayCommand } from './commands/replay.js';
import { UsageError } from './usage-error.js';

export async function main(argv: string[]): Promise<number> {
  let usageFailure: string | undefined;
  try {
    await yargs(argv)
      .scriptName('pinledger')
      .command(replayCommand)
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
    if (e instanceof UsageError) {
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
