/**
 * Store failures, classified: a `transient` one may clear by itself (the
 * database busy or locked by another connection, a full disk, an I/O error
 * that may not repeat), so the operation is retried; a `fatal` one will not
 * (read-only, corrupt, not a database, cannot open, no permission), so the
 * daemon stops and says so. The message is one line.
 */
export type StoreFaultKind = 'transient' | 'fatal';

export class StoreFault extends Error {
  override name = 'StoreFault';
  constructor(
    readonly kind: StoreFaultKind,
    /** The SQLite (extended) result code or the errno name: SQLITE_BUSY, SQLITE_IOERR_WRITE, ENOSPC. */
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Primary SQLite result codes (the part of an extended code before the second underscore). */
const TRANSIENT_SQLITE = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_PROTOCOL', 'SQLITE_INTERRUPT', 'SQLITE_NOMEM']);
const FATAL_SQLITE = new Set(['SQLITE_READONLY', 'SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CANTOPEN', 'SQLITE_PERM', 'SQLITE_AUTH', 'SQLITE_NOLFS', 'SQLITE_FORMAT']);
const TRANSIENT_ERRNO = new Set(['ENOSPC', 'EIO', 'EAGAIN', 'EDQUOT']);
const FATAL_ERRNO = new Set(['EROFS', 'EACCES', 'EPERM']);

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();

/** `SQLITE_IOERR_WRITE` -> `SQLITE_IOERR`. */
export function primaryCode(code: string): string {
  const m = /^(SQLITE_[A-Z]+)/.exec(code);
  return m ? m[1]! : code;
}

/**
 * The StoreFault an error from a store statement is, or undefined when it
 * is not a store failure (a bug, an error of the trace). SqliteError, and
 * anything carrying an SQLITE_* code (what better-sqlite3 throws), and the
 * errno errors of the database's files (ENOSPC, EIO, EROFS...).
 */
export function storeFault(e: unknown): StoreFault | undefined {
  if (e instanceof StoreFault) return e;
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  const message = oneLine(e instanceof Error ? e.message : String(e));
  if (code.startsWith('SQLITE_')) {
    const p = primaryCode(code);
    // SQLITE_ERROR and the rest (constraint, misuse, schema) are bugs, not store failures.
    if (TRANSIENT_SQLITE.has(p)) return new StoreFault('transient', code, `database ${describeCode(p)}: ${message}`, { cause: e });
    if (FATAL_SQLITE.has(p)) return new StoreFault('fatal', code, `database ${describeCode(p)}: ${message}`, { cause: e });
    return undefined;
  }
  if (TRANSIENT_ERRNO.has(code)) return new StoreFault('transient', code, `database file: ${message}`, { cause: e });
  if (FATAL_ERRNO.has(code)) return new StoreFault('fatal', code, `database file: ${message}`, { cause: e });
  return undefined;
}

function describeCode(p: string): string {
  switch (p) {
    case 'SQLITE_BUSY':
      return 'busy';
    case 'SQLITE_LOCKED':
      return 'locked';
    case 'SQLITE_FULL':
      return 'full';
    case 'SQLITE_IOERR':
      return 'I/O error';
    case 'SQLITE_READONLY':
      return 'read-only';
    case 'SQLITE_CORRUPT':
      return 'corrupt';
    case 'SQLITE_NOTADB':
      return 'is not a database';
    case 'SQLITE_CANTOPEN':
      return 'cannot be opened';
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
      return 'permission denied';
    default:
      return p.slice('SQLITE_'.length).toLowerCase();
  }
}
