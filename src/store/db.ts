/**
 * The SQLite store: opened in WAL mode with a busy timeout, so audit
 * queries read while the daemon writes; migrations from schema/migrations
 * applied in order on open, the schema version in PRAGMA user_version.
 */
import { readdirSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';

export type Db = Database.Database;

const migrationsDir = new URL('../../schema/migrations/', import.meta.url);

export function migrations(): { version: number; name: string; sql: string }[] {
  return readdirSync(migrationsDir)
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .sort()
    .map((name) => ({ version: Number(name.split('_')[0]), name, sql: readFileSync(new URL(name, migrationsDir), 'utf8') }));
}

export function openStore(file: string): Db {
  const db = new Database(file, { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  // FULL: a commit is on disk before the file is moved out of the drop folder.
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  const current = db.pragma('user_version', { simple: true }) as number;
  for (const m of migrations()) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return db;
}

/** A second connection for audit queries: read-only, never blocks the writer. */
export function openReader(file: string): Db {
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 5000 });
  return db;
}
