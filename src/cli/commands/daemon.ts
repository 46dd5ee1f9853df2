/** `pinledger daemon`: watch a drop folder and ingest what lands there. */
import { statSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { runDaemon } from '../../daemon/daemon.js';
import { makeLogger } from '../../daemon/logger.js';
import { DEFAULT_DB, checkStoreFile, dbOption } from '../query-args.js';
import { UsageError, nonEmpty, wholeNumber } from '../usage-error.js';
import { kernelOption } from '../kernel-arg.js';
import { type LimitArgs, limitOptions, limitsFromArgs } from '../limit-options.js';

export { DEFAULT_DB };

interface Args extends LimitArgs {
  watch: string;
  db: string;
  'stable-ms': number;
  kernel?: string;
}

export const DEFAULT_WATCH = 'traces/incoming';

/** pino's levels, for PINLEDGER_LOG_LEVEL. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const daemonCommand: CommandModule<object, Args> = {
  command: 'daemon',
  describe: 'Watch a drop folder, replay every trace file that lands there, and keep everything in SQLite',
  builder: (y: Argv) =>
    limitOptions(y)
      .option('watch', { type: 'string', default: DEFAULT_WATCH, describe: 'drop folder, created if missing (env PINLEDGER_WATCH)', coerce: nonEmpty('--watch') })
      .option('db', dbOption)
      .option('stable-ms', { type: 'number', default: 500, describe: 'how long a file must keep the same size and mtime before it is taken (env PINLEDGER_STABLE_MS)', coerce: wholeNumber('--stable-ms') })
      .option('kernel', { ...kernelOption, describe: `${kernelOption.describe}; applies to traces the daemon has not seen before` })
      .example('$0 daemon', 'watch traces/incoming, store in ./pinledger.db')
      .example('PINLEDGER_DB=/var/lib/pinledger/pinledger.db $0 daemon --watch /var/spool/pinledger', 'as a service would run it')
      .epilogue(
        'Options also come from PINLEDGER_WATCH, PINLEDGER_DB, PINLEDGER_STABLE_MS and the config file (never ./pinledger.config.json inside the drop folder, nor one writable by others); PINLEDGER_LOG_LEVEL sets the log level. ' +
          'One daemon per database (DB.lock); only regular files are read (others are moved to quarantine/); a store fault that does not clear logs one fatal line and exits 1; SIGTERM rolls back and exits 0, a second signal exits 130.',
      ) as unknown as Argv<Args>,
  handler: async (args) => {
    // Everything that can be refused is refused before the folder or the database is created.
    const level = process.env.PINLEDGER_LOG_LEVEL;
    if (level !== undefined && !LOG_LEVELS.includes(level)) throw new UsageError(`PINLEDGER_LOG_LEVEL=${level}: expected one of ${LOG_LEVELS.join(', ')}`);
    let watchStat;
    try {
      watchStat = statSync(args.watch);
    } catch {
      watchStat = undefined;
    }
    if (watchStat && !watchStat.isDirectory()) throw new UsageError(`--watch ${args.watch}: not a directory`);
    checkStoreFile(args.db);
    const limits = limitsFromArgs(args);
    const cfg = { watch: args.watch, db: args.db, stableMs: args['stable-ms'], limits, ...(args.kernel === undefined ? {} : { kernel: args.kernel }) };
    const code = await runDaemon(cfg, makeLogger(level));
    // Exit now: nothing the daemon started may keep the process alive past its stop (the log is written synchronously).
    process.exit(code);
  },
};
