/** `pinledger daemon`: watch a drop folder and ingest what lands there. */
import type { Argv, CommandModule } from 'yargs';
import { runDaemon } from '../../daemon/daemon.js';
import { makeLogger } from '../../daemon/logger.js';

interface Args {
  watch: string;
  db: string;
  'stable-ms': number;
}

export const DEFAULT_WATCH = 'traces/incoming';
export const DEFAULT_DB = 'pinledger.db';

export const daemonCommand: CommandModule<object, Args> = {
  command: 'daemon',
  describe: 'Watch a drop folder, replay every trace file that lands there, and keep everything in SQLite',
  builder: (y: Argv) =>
    y
      .option('watch', { type: 'string', default: DEFAULT_WATCH, describe: 'drop folder (env PINLEDGER_WATCH)' })
      .option('db', { type: 'string', default: DEFAULT_DB, describe: 'SQLite database (env PINLEDGER_DB)' })
      .option('stable-ms', { type: 'number', default: 500, describe: 'how long a file must stay the same size before it is taken' })
      .example('$0 daemon', 'watch traces/incoming, store in ./pinledger.db')
      .example('PINLEDGER_DB=/var/lib/pinledger/pinledger.db $0 daemon --watch /var/spool/pinledger', 'as a service would run it') as unknown as Argv<Args>,
  handler: async (args) => {
    process.exitCode = await runDaemon({ watch: args.watch, db: args.db, stableMs: args['stable-ms'] }, makeLogger());
  },
};
