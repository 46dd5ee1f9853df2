/**
 * The SQLite store: opened in WAL mode with a busy timeout, so audit
 * queries read while the daemon writes; migrations from schema/migrations
 * applied in order on open, the schema version in PRAGMA user_version.
 * A database newer than this code, or a file that is not a database (or
 * is corrupt where SQLite first looks), is refused with one line (a fatal
 * StoreFault) before anything is written to it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { StoreFault, storeFault } from './store-error.js';

export type Db = Database.Database;

const migrationsDir = new URL('../../schema/migrations/', import.meta.url);

export function migrations(): { version: number; name: string; sql: string }[] {
  return readdirSync(migrationsDir)
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .sort()
    .map((name) => ({ version: Number(name.split('_')[0]), name, sql: readFileSync(new URL(name, migrationsDir), 'utf8') }));
}

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = Math.max(0, ...migrations().map((m) => m.version));

/** The WAL is cut back to this size after a checkpoint (PRAGMA journal_size_limit). */
export const JOURNAL_SIZE_LIMIT = 64 << 20;

/** A failure to open `file`, as one line naming it. */
function openFault(file: string, e: unknown): unknown {
  if (e instanceof StoreFault) return e;
  const f = storeFault(e);
  if (!f) return e;
  if (f.code === 'SQLITE_NOTADB') return new StoreFault('fatal', f.code, `${file} is not an SQLite database (or its header is corrupt)`, { cause: e });
  if (f.code.startsWith('SQLITE_CORRUPT')) return new StoreFault('fatal', f.code, `${file} is a corrupt database (${f.message}): see pinledger check --db ${file}`, { cause: e });
  return new StoreFault(f.kind, f.code, `${file}: ${f.message}`, { cause: e });
}

export function openStore(file: string): Db {
  let db: Db;
  try {
    db = new Database(file, { timeout: 5000 });
  } catch (e) {
    throw openFault(file, e);
  }
  try {
    // Read before anything writes (journal_mode = WAL rewrites the header): a refused file keeps its bytes.
    const current = db.pragma('user_version', { simple: true }) as number;
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    if (current > SCHEMA_VERSION) {
      throw new StoreFault('fatal', 'SCHEMA_NEWER', `${file} has schema version ${current}, newer than this pinledger knows (${SCHEMA_VERSION})`);
    }
    db.pragma('journal_mode = WAL');
    // FULL: a commit is on disk before the file is moved out of the drop folder.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
    for (const m of migrations()) {
      if (m.version <= current) continue;
      db.transaction(() => {
        db.exec(m.sql);
        db.pragma(`user_version = ${m.version}`);
      }).immediate();
    }
  } catch (e) {
    db.close();
    throw openFault(file, e);
  }
  return db;
}

/** A second connection for audit queries: read-only, never blocks the writer. */
export function openReader(file: string): Db {
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 5000 });
  return db;
}
