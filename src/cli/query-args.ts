/**
 * What the query commands share: the database argument, opening it (and
 * refusing, in one line, a file that is not a pinledger database), --since,
 * and the check of a --pid.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { migrations, openReader, type Db } from '../store/db.js';
import { downsampleSteps, type StepColumns } from '../report/downsample.js';
import { QueryError } from '../store/queries.js';
import { UsageError, nonEmpty } from './usage-error.js';

/** The database every command uses unless told otherwise. */
export const DEFAULT_DB = 'pinledger.db';

export const dbOption = { type: 'string', default: DEFAULT_DB, describe: 'SQLite database (env PINLEDGER_DB)', coerce: nonEmpty('--db') } as const;

/** The newest schema version this pinledger knows. */
const SCHEMA = Math.max(0, ...migrations().map((m) => m.version));

/**
 * What the file at `file` is, read without writing anything: missing, not
 * usable (the message says why), empty (no tables yet: a fresh SQLite file),
 * or a pinledger database of schema `version`.
 */
function inspect(file: string): { kind: 'missing' } | { kind: 'bad'; why: string } | { kind: 'empty' } | { kind: 'pinledger'; version: number } {
  let st;
  try {
    st = statSync(file);
  } catch {
    return { kind: 'missing' };
  }
  if (st.isDirectory()) return { kind: 'bad', why: `${file} is a directory, not a database` };
  if (!st.isFile()) return { kind: 'bad', why: `${file} is not a regular file` };
  if (st.size === 0) return { kind: 'empty' };
  let db;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (tables.length === 0) return { kind: 'empty' };
    if (!tables.includes('traces') || version === 0) {
      const shownTables = tables.slice(0, 5).join(', ') + (tables.length > 5 ? ', ...' : '');
      return { kind: 'bad', why: `${file} is an SQLite database of another program (tables ${shownTables}), not pinledger's` };
    }
    return { kind: 'pinledger', version };
  } catch (e) {
    const code = String((e as { code?: unknown }).code ?? '');
    if (code === 'SQLITE_NOTADB') return { kind: 'bad', why: `${file} is not an SQLite database` };
    return { kind: 'bad', why: `${file}: cannot read it as a database: ${(e as Error).message}` };
  } finally {
    db?.close();
  }
}

/** For the audit commands: a pinledger database, opened read-only. */
export function openDb(file: string): Db {
  const what = inspect(file);
  if (what.kind === 'missing') throw new QueryError(`No database at ${file}: ingest traces first (pinledger daemon, or pinledger ingest FILE)`);
  if (what.kind === 'bad') throw new QueryError(what.why);
  if (what.kind === 'empty') throw new QueryError(`${file} is an empty database: ingest traces first (pinledger daemon, or pinledger ingest FILE)`);
  if (what.version > SCHEMA) throw new QueryError(`${file} has schema version ${what.version}, newer than this pinledger knows (${SCHEMA})`);
  if (what.version < SCHEMA) throw new QueryError(`${file} has schema version ${what.version}, older than this pinledger's (${SCHEMA}): run pinledger ingest or the daemon on it once to upgrade it`);
  return openReader(file);
}

/**
 * For the commands that write (ingest, daemon), before anything is created:
 * the file may be missing (it is created), empty, or a pinledger database;
 * anything else is refused, so another program's database is never touched.
 */
export function checkStoreFile(file: string): void {
  const what = inspect(file);
  if (what.kind === 'bad') throw new UsageError(what.why);
  if (what.kind === 'pinledger' && what.version > SCHEMA) throw new UsageError(`${file} has schema version ${what.version}, newer than this pinledger knows (${SCHEMA})`);
  if (what.kind === 'missing') {
    const dir = dirname(file);
    if (!existsSync(dir)) throw new UsageError(`cannot create database ${file}: no directory ${dir}`);
    if (!statSync(dir).isDirectory()) throw new UsageError(`cannot create database ${file}: ${dir} is not a directory`);
  }
}

/**
 * `--pid` of a trace: refused (exit 2) unless the trace has that process,
 * naming those it has. Call after requireTrace, before any output.
 */
export function requirePid(db: Db, traceId: string, pid: number | undefined): void {
  if (pid === undefined) return;
  const pids = (db.prepare('SELECT DISTINCT pid FROM accounting WHERE trace_id = ? ORDER BY pid').all(traceId) as { pid: number }[]).map((r) => r.pid);
  if (pids.includes(pid)) return;
  const listed = pids.slice(0, 20).join(', ') + (pids.length > 20 ? ` (and ${pids.length - 20} more)` : '');
  throw new QueryError(pids.length === 0 ? `No pid ${pid} in trace ${JSON.stringify(traceId)}: it has no processes` : `No pid ${pid} in trace ${JSON.stringify(traceId)}; pids: ${listed}`);
}

/** `--since`: an ISO date or time, or a duration back from now such as 30m, 12h, 7d. */
export function parseSince(v: string | undefined, now = Date.now()): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)\s*(s|m|h|d)$/.exec(v);
  if (m) return now - Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new QueryError(`--since ${JSON.stringify(v)}: expected an ISO date/time or a duration such as 30m, 12h, 7d`);
  return t;
}

/** The --since option: checked by yargs (the handler parses it against the time it runs). */
export const sinceOption = (describe: string) =>
  ({
    type: 'string',
    describe,
    coerce: (v: string | string[]) => {
      const s = String(Array.isArray(v) ? v[v.length - 1] : v);
      try {
        parseSince(s);
      } catch (e) {
        if (e instanceof QueryError) throw new UsageError(e.message);
        throw e;
      }
      return s;
    },
  }) as const;

/**
 * A one-line chart of a step series: one character per column, the maximum
 * in each (the value carried into a column counts). Takes the points, or
 * columns already cut (timelineColumns() in the store), and loops: a
 * timeline of millions of points neither overflows the stack nor is copied.
 */
export function sparkline(points: readonly (readonly [number, number])[] | StepColumns, width = 60): string {
  let d: StepColumns;
  if ('columns' in points && !Array.isArray(points)) d = points as StepColumns;
  else {
    const pts = points as readonly (readonly [number, number])[];
    if (pts.length === 0) return '';
    const first = pts[0]![0];
    const last = pts[pts.length - 1]![0];
    d = downsampleSteps(pts, first, last, Math.max(1, Math.min(width, last - first + 1)));
  }
  if (d.points === 0) return '';
  const blocks = ' ▁▂▃▄▅▆▇█';
  const max = d.peak;
  let out = '';
  for (let c = 0; c < d.columns; c++) {
    const v = d.max[c]!;
    out += Number.isNaN(v) || !(max > 0) ? blocks[0] : blocks[Math.max(0, Math.round((v / max) * 8))];
  }
  return out;
}
