/**
 * The child process of `pinledger sql` (src/cli/commands/sql.ts forks it):
 * opens the database read-only, with `PRAGMA query_only` and SQLite's
 * `hard_heap_limit`, runs the one query and writes its rows straight to the
 * stdout it inherited, stopping after `maxRows`. It tells the parent how it
 * ended (SqlOutcome) and exits; the parent kills it at --timeout, so a
 * runaway query ends with its process and never keeps a read snapshot (the
 * WAL) pinned.
 */
import Database from 'better-sqlite3';
import { QueryError, readOnlySqlRows } from '../store/queries.js';
import { streamTable } from './format.js';
import { bigintHex, streamArray, write } from './commands/output.js';

export interface SqlJob {
  db: string;
  query: string;
  json: boolean;
  maxRows: number;
  heapLimitBytes: number;
}

export type SqlOutcome =
  | { kind: 'done'; rows: number; truncated: boolean }
  | { kind: 'refused'; message: string }
  | { kind: 'failed'; message: string; code: string | null };

/** At most `max` rows; `state.truncated` says whether there was one more. */
function* limited<T>(rows: Iterable<T>, max: number, state: { rows: number; truncated: boolean }): Generator<T> {
  for (const r of rows) {
    if (state.rows === max) {
      state.truncated = true;
      return;
    }
    state.rows++;
    yield r;
  }
}

function* cells(rows: Iterable<unknown[]>): Generator<string[]> {
  for (const r of rows) yield r.map((v) => String(v ?? 'NULL'));
}

export function runJob(job: SqlJob): SqlOutcome {
  const db = new Database(job.db, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    db.pragma('query_only = ON');
    db.pragma(`hard_heap_limit = ${Math.floor(job.heapLimitBytes)}`);
    let r;
    try {
      r = readOnlySqlRows(db, job.query);
    } catch (e) {
      if (e instanceof QueryError) return { kind: 'refused', message: e.message };
      throw e;
    }
    const state = { rows: 0, truncated: false };
    const rows = limited(r.rows, job.maxRows, state);
    if (job.json) {
      // {"columns": [...], "rows": [{...}, ...], "truncated": bool}, each row on its own line.
      write(`{\n  "columns": ${JSON.stringify(r.columns)},\n  "rows": `);
      streamArray(rows, '  ', (values) => JSON.stringify(Object.fromEntries(r.columns.map((c, i) => [c, values[i]])), bigintHex));
      write(`,\n  "truncated": ${state.truncated}\n}\n`);
    } else {
      streamTable(cells(rows), r.columns, write);
    }
    return { kind: 'done', rows: state.rows, truncated: state.truncated };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return { kind: 'failed', message: (e as Error).message, code: typeof code === 'string' ? code : null };
  } finally {
    db.close();
  }
}

// Run as the forked child: one job from the parent, one outcome back.
if (process.send !== undefined) {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => process.exit(e.code === 'EPIPE' ? 0 : 1));
  process.once('message', (job: SqlJob) => {
    const outcome = runJob(job);
    process.send!(outcome, () => process.exit(0));
  });
}
