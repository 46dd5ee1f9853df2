/**
 * The pinledger command line. Exit status: 0 no error findings, 1 error
 * findings, 2 bad input or usage (one line on stderr, before anything is
 * written), 70 an internal error (one line; the stack with PINLEDGER_DEBUG=1).
 *
 * Usage is checked by yargs itself before a handler runs: strict options
 * and commands, demandOption, choices, and coerce functions that throw
 * (src/cli/usage-error.ts); `fail` throws, so a handler never runs after a
 * failed check. Options also come from PINLEDGER_* variables and a config
 * file, for the options the running command declares only (src/cli/config.ts).
 */
import yargs, { type CommandModule, type MiddlewareFunction } from 'yargs';
import { TraceError } from '../trace/trace-error.js';
import { IncompleteSegment } from '../trace/stop.js';
import { printable } from './format.js';
import { DEFAULT_WATCH, daemonCommand } from './commands/daemon.js';
import { ingestCommand } from './commands/ingest.js';
import { replayCommand } from './commands/replay.js';
import { accountingCommand, findingsCommand, tracesCommand } from './commands/queries.js';
import { diffCommand } from './commands/diff.js';
import { sqlCommand } from './commands/sql.js';
import { stateCommand } from './commands/state.js';
import { QueryError } from '../store/queries.js';
import { StoreFault } from '../store/store-error.js';
import { checkCommand } from './commands/check.js';
import { segmentsCommand } from './commands/segments.js';
import { reportCommand } from './commands/report.js';
import { genCommand } from './commands/gen.js';
import { importCommand } from './commands/import.js';
import { LAB_COMMANDS, labCommand } from './commands/lab.js';
import { ConfigError, DEFAULT_CONFIG, camel, implicitConfig, loadConfig, optionsOfCommands } from './config.js';
import { UsageError } from './usage-error.js';

const COMMANDS = [
  replayCommand,
  ingestCommand,
  daemonCommand,
  tracesCommand,
  segmentsCommand,
  findingsCommand,
  accountingCommand,
  stateCommand,
  diffCommand,
  sqlCommand,
  checkCommand,
  reportCommand,
  genCommand,
  importCommand,
  labCommand,
] as const;

/** What yargs knows of the running command's options (not in @types/yargs). */
interface WithOptions {
  getOptions(): { key: Record<string, unknown>; alias: Record<string, string[] | undefined> };
}

/** Any message as one line, control characters escaped (a trace_id may hold ESC). */
const oneLine = (s: string): string =>
  printable(
    s
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .join(' '),
  );

/**
 * yargs' messages, clearer: an unknown option named once (yargs lists
 * `such-option, suchOption`), a missing positional shown in the usage line.
 */
function tidy(msg: string, usage: string | undefined): string {
  if (usage && /^Not enough non-option arguments/.test(msg)) return `Missing arguments: pinledger ${usage}`;
  const m = /^(Unknown arguments?): (.*)$/.exec(msg);
  if (!m) return msg;
  const names = m[2]!.split(', ');
  const kept = names.filter((n) => !names.some((o) => o !== n && camel(o) === n));
  return `${kept.length === 1 ? 'Unknown argument' : 'Unknown arguments'}: ${kept.join(', ')}`;
}

/** Errors the user can fix (bad usage, bad input, a file that is not what it should be): exit 2. */
function userError(e: unknown): string | undefined {
  if (e instanceof TraceError) return `bad trace: ${e.message}`;
  if (e instanceof IncompleteSegment) return `${e.file}: ${e.message}`;
  if (e instanceof UsageError || e instanceof QueryError || e instanceof ConfigError) return e.message;
  // The store refusing a database (newer schema, not a database, corrupt): one line.
  if (e instanceof StoreFault) return e.message;
  const err = e as NodeJS.ErrnoException & { name?: string };
  // fs errors (a missing file, a directory where a file was expected, no permission).
  if (err && typeof err.code === 'string' && typeof err.syscall === 'string') return err.message;
  // SQLite saying the file is not a usable database.
  if (err?.name === 'SqliteError' && /^SQLITE_(NOTADB|CANTOPEN|CORRUPT|READONLY|PERM|AUTH|FULL|IOERR|BUSY|LOCKED)/.test(String(err.code))) return `database: ${err.message}`;
  return undefined;
}

/** The one line of an internal error (the stack too when PINLEDGER_DEBUG=1). */
function internal(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`pinledger: internal error: ${oneLine(msg) || (e instanceof Error ? e.name : 'unknown')}\n`);
  if (process.env.PINLEDGER_DEBUG === '1' && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
}

let processHandlers = false;

/** Errors outside the command's promise (timers, watchers): the same one line, never a raw stack. */
function installProcessHandlers(): void {
  if (processHandlers) return;
  processHandlers = true;
  const die = (e: unknown) => {
    const user = userError(e);
    if (user !== undefined) process.stderr.write(`pinledger: ${oneLine(user)}\n`);
    else internal(e);
    process.exit(user !== undefined ? 2 : 70);
  };
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
}

export async function main(argv: string[]): Promise<number> {
  installProcessHandlers();
  const known = optionsOfCommands(COMMANDS);
  // Keys the environment and the config file bring (camelCase, as yargs-parser sets them).
  const fromEnv = new Set(Object.keys(process.env).filter((k) => k.startsWith('PINLEDGER_')).map((k) => camel(k.slice('PINLEDGER_'.length).toLowerCase())));
  const fromConfig = new Set<string>();
  // Options typed on the command line (before `--`), which are always checked.
  const typed = new Set<string>();
  for (const t of argv) {
    if (t === '--') break;
    const m = /^--(?:no-)?([^=]+)/.exec(t);
    if (m) typed.add(camel(m[1]!)).add(camel(t.slice(2).split('=')[0]!));
  }
  // The command named (for the hint of a usage error), and its usage line.
  const words = argv.filter((t) => !t.startsWith('-'));
  const module = COMMANDS.find((c) => String(c.command).split(' ')[0] === words[0]);
  const sub = module === labCommand ? LAB_COMMANDS.find((c) => String(c.command).split(' ')[0] === words[1]) : undefined;
  const commandName = module ? [words[0], ...(sub ? [words[1]] : [])].join(' ') : undefined;
  const usage = module ? (sub ? `lab ${String(sub.command)}` : String(module.command)) : undefined;
  let configError: ConfigError | undefined;
  // ./pinledger.config.json only where it is safe to read (src/cli/config.ts).
  const implicit = implicitConfig(argv, process.env, DEFAULT_WATCH);
  if (implicit && 'ignored' in implicit) process.stderr.write(`pinledger: not reading ./${implicit.ignored}: ${implicit.reason}\n`);

  const y = yargs(argv);
  try {
    await y
      .scriptName('pinledger')
      // Listed explicitly (no commandDir under ESM), in the order --help shows them.
      .command(COMMANDS as unknown as CommandModule[])
      .env('PINLEDGER')
      .config('config', 'a JSON file of options, e.g. {"watch": "/srv/drop", "db": "/srv/pinledger.db"}, for the options the command has (env PINLEDGER_CONFIG)', (path) => {
        try {
          const doc = loadConfig(path, known);
          for (const k of Object.keys(doc)) fromConfig.add(camel(k));
          return doc;
        } catch (e) {
          if (e instanceof ConfigError) configError = e;
          throw e;
        }
      })
      .default('config', implicit && 'use' in implicit ? implicit.use : undefined, `./${DEFAULT_CONFIG} when present, owned by root or you, not writable by others, and not inside the drop folder`)
      // Before validation: drop what the environment or the config file set
      // for options this command does not have (strict mode checks the rest).
      .middleware(((args: Record<string, unknown>, inner: WithOptions) => {
        const { key, alias } = inner.getOptions();
        const declared = new Set<string>();
        for (const k of Object.keys(key)) for (const n of [k, ...(alias[k] ?? [])]) declared.add(camel(n));
        for (const k of Object.keys(args)) {
          const c = camel(k);
          if (k === '_' || k === '$0' || declared.has(c) || typed.has(c)) continue;
          if (fromEnv.has(c) || fromConfig.has(c)) delete args[k];
        }
      }) as unknown as MiddlewareFunction, true)
      .demandCommand(1, 'Name a command: pinledger --help lists them')
      .strict()
      .fail((msg, err) => {
        if (configError) throw configError;
        // An error of a handler (yargs passes async ones here too): as it is.
        if (err && err.name !== 'YError') throw err;
        const text = tidy(oneLine(msg ?? err?.message ?? 'bad usage'), usage);
        throw new UsageError(`${text} (see pinledger ${commandName ? `${commandName} ` : ''}--help)`);
      })
      .example('$0 replay traces/samples/vm-boot.jsonl', 'replay a trace and print findings and locked memory')
      .example('$0 daemon --watch /srv/drop --db /srv/pinledger.db', 'ingest every trace that lands in /srv/drop')
      .wrap(process.stdout.isTTY && process.stdout.columns ? process.stdout.columns : 80)
      .exitProcess(false)
      .help()
      .version()
      .parseAsync();
  } catch (e) {
    const user = userError(e);
    if (user !== undefined) {
      process.stderr.write(`pinledger: ${oneLine(user)}\n`);
      return 2;
    }
    internal(e);
    return 70;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
