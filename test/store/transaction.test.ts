/**
 * The transaction helper and the classification of store failures: every
 * way out of withTransaction leaves no transaction open; a failing
 * ROLLBACK is fatal; SQLite's codes and the database files' errnos map to
 * transient or fatal, anything else is not a store fault.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.js';
import { StoreFault, storeFault } from '../../src/store/store-error.js';
import { commit, rollBack, withTransaction } from '../../src/store/transaction.js';
import { faultyDb } from './faulty-db.js';

const sqlite = (code: string) => new Database.SqliteError('m', code);
const errno = (code: string) => Object.assign(new Error(`${code}: m`), { code, syscall: 'write' });

describe('storeFault', () => {
  it('classifies', () => {
    const kinds = (['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR_FSYNC', 'SQLITE_READONLY', 'SQLITE_READONLY_DBMOVED', 'SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CANTOPEN', 'SQLITE_PERM', 'SQLITE_ERROR', 'SQLITE_CONSTRAINT_UNIQUE'] as const).map(
      (c) => [c, storeFault(sqlite(c))?.kind ?? 'not a store fault'],
    );
    expect(kinds).toEqual([
      ['SQLITE_BUSY', 'transient'],
      ['SQLITE_BUSY_SNAPSHOT', 'transient'],
      ['SQLITE_LOCKED', 'transient'],
      ['SQLITE_FULL', 'transient'],
      ['SQLITE_IOERR_FSYNC', 'transient'],
      ['SQLITE_READONLY', 'fatal'],
      ['SQLITE_READONLY_DBMOVED', 'fatal'],
      ['SQLITE_CORRUPT', 'fatal'],
      ['SQLITE_NOTADB', 'fatal'],
      ['SQLITE_CANTOPEN', 'fatal'],
      ['SQLITE_PERM', 'fatal'],
      ['SQLITE_ERROR', 'not a store fault'],
      ['SQLITE_CONSTRAINT_UNIQUE', 'not a store fault'],
    ]);
    expect(['ENOSPC', 'EIO', 'EROFS', 'ENOENT'].map((c) => storeFault(errno(c))?.kind ?? 'not a store fault')).toEqual(['transient', 'transient', 'fatal', 'not a store fault']);
    expect(storeFault(new RangeError('Invalid string length'))).toBeUndefined();
    expect(storeFault(sqlite('SQLITE_FULL'))!.message).toBe('database full: m');
  });
});

describe('withTransaction', () => {
  it('commits, rolls back on request and on a throw; never leaves a transaction open', async () => {
    const db = openStore(':memory:');
    db.exec('CREATE TABLE t (x INTEGER)');
    const ins = db.prepare('INSERT INTO t VALUES (?)');
    expect(await withTransaction(db, async () => (ins.run(1), commit('kept')))).toBe('kept');
    expect(await withTransaction(db, async () => (ins.run(2), rollBack('dropped')))).toBe('dropped');
    await expect(
      withTransaction(db, async () => {
        ins.run(3);
        await Promise.resolve();
        throw new TypeError('a bug');
      }),
    ).rejects.toThrow(new TypeError('a bug'));
    // A store failure of a statement comes out as a StoreFault.
    const f = faultyDb(db, 2, 'SQLITE_BUSY');
    const e = await withTransaction(f.db, async () => (f.db.prepare('INSERT INTO t VALUES (4)').run(), commit(undefined))).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StoreFault);
    expect((e as StoreFault).kind).toBe('transient');
    expect(db.inTransaction).toBe(false);
    expect(db.prepare('SELECT x FROM t').all()).toEqual([{ x: 1 }]);
  });

  it('a failing COMMIT rolls back; a failing ROLLBACK is fatal', async () => {
    const db = openStore(':memory:');
    db.exec('CREATE TABLE t (x INTEGER)');
    // Statements: BEGIN (1), INSERT (2), COMMIT (3).
    const c = faultyDb(db, 3, 'SQLITE_IOERR_WRITE');
    await expect(withTransaction(c.db, async () => (c.db.prepare('INSERT INTO t VALUES (1)').run(), commit(undefined)))).rejects.toThrow(StoreFault);
    expect(db.inTransaction).toBe(false);
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 0 });
    // BEGIN (1), INSERT (2), ROLLBACK (3).
    const r = faultyDb(db, 3, 'SQLITE_IOERR');
    const e = await withTransaction(r.db, async () => (r.db.prepare('INSERT INTO t VALUES (1)').run(), rollBack(undefined))).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StoreFault);
    expect((e as StoreFault).kind).toBe('fatal');
    expect((e as StoreFault).message).toBe('database: ROLLBACK failed (injected fault at store statement 3 (ROLLBACK)); the connection cannot be trusted');
    // Tried once more: the lock is not left held.
    expect(db.inTransaction).toBe(false);
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 0 });
  });
});
