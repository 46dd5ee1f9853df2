/**
 * The one place that owns BEGIN IMMEDIATE / COMMIT / ROLLBACK for work
 * that awaits (better-sqlite3's db.transaction() takes synchronous
 * functions only). `fn` says whether to commit by what it returns; a throw,
 * or `commit: false`, rolls back. Whatever happens, no transaction is left
 * open when this returns or throws: when ROLLBACK itself fails, the
 * connection cannot be trusted and a fatal StoreFault is thrown.
 */
import type { Db } from './db.js';
import { StoreFault, storeFault } from './store-error.js';

export interface TxResult<T> {
  /** true: COMMIT; false: ROLLBACK (aborted, changed, incomplete, or a quarantine written afterwards). */
  commit: boolean;
  value: T;
}

export const commit = <T>(value: T): TxResult<T> => ({ commit: true, value });
export const rollBack = <T>(value: T): TxResult<T> => ({ commit: false, value });

/**
 * Runs `fn` inside BEGIN IMMEDIATE. Store failures (of BEGIN, of a
 * statement of `fn`, of COMMIT) are thrown as StoreFault after the
 * rollback; any other exception of `fn` is thrown as it is, after the
 * rollback.
 */
export async function withTransaction<T>(db: Db, fn: () => Promise<TxResult<T>>): Promise<T> {
  if (db.inTransaction) throw new StoreFault('fatal', 'SQLITE_MISUSE', 'a transaction is already open on this connection');
  try {
    db.exec('BEGIN IMMEDIATE');
  } catch (e) {
    throw storeFault(e) ?? e;
  }
  let r: TxResult<T>;
  try {
    r = await fn();
    if (r.commit) db.exec('COMMIT');
  } catch (e) {
    rollback(db, e);
    throw storeFault(e) ?? e;
  }
  if (!r.commit) rollback(db, undefined);
  return r.value;
}

/**
 * ROLLBACK when a transaction is still open (SQLite ends some on its own,
 * after SQLITE_FULL or an I/O error). A failing ROLLBACK is tried once
 * more, so the write lock is not left held, and is fatal either way.
 */
function rollback(db: Db, cause: unknown): void {
  if (!db.inTransaction) return;
  try {
    db.exec('ROLLBACK');
  } catch (e) {
    const why = (e as Error).message ?? String(e);
    let again = '';
    try {
      if (db.inTransaction) db.exec('ROLLBACK');
    } catch (e2) {
      again = `, and again (${(e2 as Error).message ?? String(e2)})`;
    }
    throw new StoreFault('fatal', String((e as { code?: unknown }).code ?? 'ROLLBACK'), `database: ROLLBACK failed (${why})${again}; the connection cannot be trusted`, { cause: cause ?? e });
  }
  if (db.inTransaction) throw new StoreFault('fatal', 'ROLLBACK', 'database: a transaction is still open after ROLLBACK', { cause });
}

/**
 * A synchronous unit of statements outside an ingest (the ledger's record
 * from the daemon): better-sqlite3's own transaction, or the statements
 * alone when a transaction is already open (they become part of it).
 */
export function syncTransaction<T>(db: Db, fn: () => T): T {
  if (db.inTransaction) return fn();
  try {
    return db.transaction(fn).immediate();
  } catch (e) {
    throw storeFault(e) ?? e;
  }
}
