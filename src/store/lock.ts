/**
 * One writer process per database: `<db>.lock`, a small SQLite file held
 * with BEGIN EXCLUSIVE for the holder's lifetime. SQLite's locks are fcntl
 * locks, which the kernel drops when the process dies (kill -9 included),
 * so a lock is never stale. `<db>.lock.json` names the holder ({pid, role,
 * started}) for the message the next one gets; it is only read while the
 * lock is held by someone, and removed before a clean release. The lock
 * file itself is never removed (a waiter may hold it open).
 */
import { closeSync, constants, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';

export type LockRole = 'daemon' | 'ingest';

export interface LockHolder {
  pid: number;
  role: LockRole;
  /** ms since the epoch. */
  started: number;
}

export class StoreLockedError extends Error {
  override name = 'StoreLockedError';
  constructor(
    readonly dbFile: string,
    /** undefined when the holder has not written its name yet (or it cannot be read). */
    readonly holder: LockHolder | undefined,
    message: string,
  ) {
    super(message);
  }
}

export const lockFileOf = (dbFile: string): string => `${dbFile}.lock`;
export const holderFileOf = (dbFile: string): string => `${dbFile}.lock.json`;

/** The holder named in `<db>.lock.json`, or undefined when there is none that parses. */
export function readHolder(dbFile: string): LockHolder | undefined {
  let text: string;
  try {
    text = readFileSync(holderFileOf(dbFile), 'utf8');
  } catch {
    // No holder file (yet): the message says the holder is unknown.
    return undefined;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  const h = doc as Partial<LockHolder>;
  if (typeof h !== 'object' || h === null || !Number.isInteger(h.pid) || (h.role !== 'daemon' && h.role !== 'ingest') || typeof h.started !== 'number') return undefined;
  return { pid: h.pid!, role: h.role, started: h.started };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The message for `role` finding the database held. */
export function lockedMessage(dbFile: string, role: LockRole, holder: LockHolder | undefined): string {
  if (!holder) return `${dbFile} is in use by another pinledger process (${lockFileOf(dbFile)} is locked)`;
  if (holder.role === 'daemon') {
    return role === 'daemon'
      ? `${dbFile} is held by the pinledger daemon pid ${holder.pid}: one daemon per database`
      : `${dbFile} is held by the pinledger daemon pid ${holder.pid}: drop the files into its folder instead`;
  }
  return `${dbFile} is held by pinledger ingest pid ${holder.pid}`;
}

function writeHolder(dbFile: string, holder: LockHolder): void {
  const file = holderFileOf(dbFile);
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, constants.O_CREAT | constants.O_TRUNC | constants.O_WRONLY | constants.O_NOFOLLOW, 0o644);
  try {
    writeSync(fd, JSON.stringify(holder) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/**
 * Takes the lock or throws StoreLockedError naming the holder. Returns the
 * release function (idempotent). The lock is also released when the
 * process exits, however it exits.
 */
export function acquireStoreLock(dbFile: string, role: LockRole): () => void {
  const lock = new Database(lockFileOf(dbFile), { timeout: 0 });
  try {
    lock.pragma('journal_mode = OFF');
    lock.exec('BEGIN EXCLUSIVE');
  } catch (e) {
    lock.close();
    if ((e as { code?: unknown }).code !== 'SQLITE_BUSY') throw e;
    throw lockedError(dbFile, role);
  }
  const holder: LockHolder = { pid: process.pid, role, started: Date.now() };
  try {
    writeHolder(dbFile, holder);
  } catch (e) {
    lock.close();
    throw e;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    // The name first, then the lock: a holder file never names a process that has let go... except a killed one, which nobody reads.
    try {
      if (readHolder(dbFile)?.pid === process.pid) unlinkSync(holderFileOf(dbFile));
    } finally {
      lock.close();
    }
  };
}

/** The holder may not have written its name yet: look a few times (up to 500 ms) for a living one. */
function lockedError(dbFile: string, role: LockRole): StoreLockedError {
  let holder = readHolder(dbFile);
  const until = Date.now() + 500;
  while ((!holder || !alive(holder.pid)) && Date.now() < until) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    holder = readHolder(dbFile);
  }
  if (holder && !alive(holder.pid)) holder = undefined;
  return new StoreLockedError(dbFile, holder, lockedMessage(dbFile, role, holder));
}

/**
 * For `pinledger ingest`: takes the lock, waiting up to `waitMs` while
 * another `ingest` holds it; refuses at once when a daemon holds it.
 * `onWait` is called once when it starts waiting.
 */
export async function waitForStoreLock(dbFile: string, role: LockRole, waitMs: number, onWait?: (holder: LockHolder | undefined) => void): Promise<() => void> {
  const until = Date.now() + waitMs;
  let told = false;
  for (;;) {
    try {
      return acquireStoreLock(dbFile, role);
    } catch (e) {
      if (!(e instanceof StoreLockedError) || e.holder?.role === 'daemon' || Date.now() >= until) throw e;
      if (!told) onWait?.(e.holder);
      told = true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
