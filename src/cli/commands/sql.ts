/**
 * `sql`: one read-only query on the documented schema, in a child process
 * (src/cli/sql-worker.ts) that opens the database read-only with
 * `query_only` and a memory limit and streams the rows to stdout. Bounded:
 * the child is killed (SIGKILL) at --timeout, exit 2; at --max-rows the
 * rows printed stand, a line on stderr says the result was cut, exit 0.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Argv, CommandModule } from 'yargs';
import { QueryError } from '../../store/queries.js';
import { dbOption, openDb } from '../query-args.js';
import type { SqlJob, SqlOutcome } from '../sql-worker.js';
import { nonEmpty, wholeNumber } from '../usage-error.js';
import { type Common, jsonOption } from './output.js';

/**
 * SQLite's heap in the child (PRAGMA hard_heap_limit). better-sqlite3 is
 * built with SQLITE_DEFAULT_MEMSTATUS=0, which leaves that pragma
 * unenforced, so the child's data segment is limited too (RLIMIT_DATA, set
 * by `ulimit -d` before node starts): a query needing more fails with one line.
 */
export const SQL_HEAP_LIMIT = 512 * 1024 * 1024;
export const SQL_DATA_LIMIT = 1024 * 1024 * 1024;
export const DEFAULT_SQL_TIMEOUT_S = 10;
export const DEFAULT_SQL_MAX_ROWS = 10_000;

const worker = fileURLToPath(new URL('../sql-worker.js', import.meta.url));

type SqlArgs = Common & { query: string; timeout: number; 'max-rows': number };

/** How the child ended: its outcome message, or killed at the timeout, or dead on its own. */
type Ending = { outcome: SqlOutcome } | { timedOut: true } | { died: string };

function runInChild(job: SqlJob, timeoutMs: number): Promise<Ending> {
  return new Promise((resolve) => {
    // sh sets the limits and execs node, so the pid killed at the timeout is the query's.
    // RLIMIT_CPU a little past the timeout: a child orphaned by a parent killed
    // with SIGKILL (nothing forwards that) is ended by the kernel all the same.
    const cpuSeconds = Math.ceil(timeoutMs / 1000) + 5;
    const child = spawn('/bin/sh', ['-c', `ulimit -d ${SQL_DATA_LIMIT / 1024} && ulimit -t ${cpuSeconds} && exec "$0" "$@"`, process.execPath, '--max-old-space-size=256', worker], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    let outcome: SqlOutcome | undefined;
    let timedOut = false;
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => {
      if (stderr.length < 4096) stderr += b.toString('utf8');
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    // Ended from outside (Ctrl-C, systemd): the child goes too.
    const onSignal = (sig: NodeJS.Signals) => {
      child.kill('SIGKILL');
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15));
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, onSignal);
    child.on('message', (m: SqlOutcome) => {
      outcome = m;
    });
    child.on('error', (e) => {
      outcome ??= { kind: 'failed', message: `cannot start the query's process: ${e.message}`, code: null };
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      for (const s of signals) process.off(s, onSignal);
      if (timedOut) return resolve({ timedOut: true });
      if (outcome) return resolve({ outcome });
      // No outcome: V8 out of memory (its heap limit) or another death.
      const oom = /heap out of memory|Allocation failed|Cannot allocate memory|std::bad_alloc/.test(stderr);
      resolve({ died: oom ? `the query needs more memory than the sql command allows (${SQL_DATA_LIMIT / (1 << 20)} MiB)` : `the query's process ended (${signal ?? `exit ${code}`}) before the query finished` });
    });
    child.send(job);
  });
}

export const sqlCommand: CommandModule<object, SqlArgs> = {
  command: 'sql <query>',
  describe: 'Read-only SQL on the documented schema (anything but a read is refused), with a time and a row limit',
  builder: (y: Argv) =>
    y
      .positional('query', { type: 'string', demandOption: true, describe: 'one SELECT (or WITH ... SELECT)', coerce: nonEmpty('the query') })
      .option('db', dbOption)
      .option('json', jsonOption)
      .option('timeout', { type: 'number', default: DEFAULT_SQL_TIMEOUT_S, describe: 'seconds before the query is stopped (exit 2)', coerce: wholeNumber('--timeout', 1) })
      .option('max-rows', { type: 'number', default: DEFAULT_SQL_MAX_ROWS, describe: 'at most this many rows are printed (a line on stderr says when more matched)', coerce: wholeNumber('--max-rows', 1) })
      .example('$0 sql "SELECT code, count(*) FROM findings GROUP BY code"', 'findings by code') as unknown as Argv<SqlArgs>,
  handler: async (a) => {
    // The same checks and one-line refusals as every query command, before the child starts.
    openDb(a.db).close();
    const end = await runInChild({ db: a.db, query: a.query, json: a.json, maxRows: a['max-rows'], heapLimitBytes: SQL_HEAP_LIMIT }, a.timeout * 1000);
    if ('timedOut' in end) throw new QueryError(`stopped after --timeout ${a.timeout}s: the query did not finish (raise --timeout, or narrow the query)`);
    if ('died' in end) throw new QueryError(`SQL error: ${end.died}`);
    const o = end.outcome;
    if (o.kind === 'refused') throw new QueryError(o.message);
    if (o.kind === 'failed') {
      const memory = o.code === 'SQLITE_NOMEM' ? ` (the sql command allows ${SQL_DATA_LIMIT / (1 << 20)} MiB)` : '';
      throw new QueryError(`SQL error: ${o.message}${memory}`);
    }
    if (o.truncated) process.stderr.write(`pinledger: stopped at --max-rows ${a['max-rows']}: the query has more rows (raise --max-rows)\n`);
  },
};
