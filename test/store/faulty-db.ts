/**
 * A Db whose Nth store statement fails, after iommufd's fail_nth: a Proxy
 * over better-sqlite3's Database whose prepare() returns statement proxies,
 * so every run/get/all/iterate of a statement and every exec is counted,
 * and the one numbered `failAt` throws an SqliteError with `code` instead
 * of running. `failAt` 0 never fails (a clean run, to count).
 */
import Database from 'better-sqlite3';
import type { Db } from '../../src/store/db.js';

export interface FaultyDb {
  db: Db;
  /** Statements run so far (the failing one included). */
  count(): number;
  /** Whether the fault has fired. */
  fired(): boolean;
  /** What the failing statement was: the SQL given to exec, or the statement method (run, get...). */
  firedOn(): string | undefined;
}

const COUNTED = new Set(['run', 'get', 'all', 'iterate']);

export function faultyDb(real: Db, failAt: number, code: string): FaultyDb {
  let n = 0;
  let fired = false;
  let firedOn: string | undefined;
  const step = (what: string) => {
    n++;
    if (n === failAt) {
      fired = true;
      firedOn = what;
      throw new Database.SqliteError(`injected fault at store statement ${n} (${what})`, code);
    }
  };
  const wrapStatement = (stmt: Database.Statement): Database.Statement =>
    new Proxy(stmt, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown;
        if (typeof v !== 'function') return v;
        if (COUNTED.has(String(prop))) {
          return (...args: unknown[]) => {
            step(String(prop));
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return (v as (...a: unknown[]) => unknown).bind(target);
      },
    });
  const db = new Proxy(real, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      if (prop === 'prepare') return (sql: string) => wrapStatement(target.prepare(sql));
      if (prop === 'exec') {
        return (sql: string) => {
          step(sql);
          return target.exec(sql);
        };
      }
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return { db, count: () => n, fired: () => fired, firedOn: () => firedOn };
}
