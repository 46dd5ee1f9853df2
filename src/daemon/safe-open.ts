/**
 * Opens a file of the drop folder for reading only when it is a regular
 * file: lstat first (a device or FIFO is never even opened), then open
 * with O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC (a symlink fails with
 * ELOOP, a FIFO swapped in cannot block), then fstat the fd and check it
 * is the same regular file lstat saw. The caller closes the fd.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, type Stats } from 'node:fs';
import { basename } from 'node:path';
import type { OpenedFile } from '../store/ingest.js';

/** Linux's value; Node does not export it (libuv sets it on every open anyway). */
const O_CLOEXEC = (constants as Record<string, number>).O_CLOEXEC ?? 0o2000000;
export const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | O_CLOEXEC;

/** What a non-regular file is, in the words of reasons and logs. */
export type NodeKind = 'symlink' | 'fifo' | 'socket' | 'block device' | 'character device' | 'directory' | 'unknown file type';

export type OpenOutcome =
  | { kind: 'opened'; file: OpenedFile }
  /** Not a regular file: never read. */
  | { kind: 'rejected'; what: NodeKind; reason: string }
  /** EACCES/EPERM (or another error opening it): retried when it changes. */
  | { kind: 'unreadable'; code: string; reason: string }
  /** Gone before it could be opened. */
  | { kind: 'gone' };

export function kindOf(st: Stats): NodeKind | 'file' {
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isBlockDevice()) return 'block device';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isDirectory()) return 'directory';
  return 'unknown file type';
}

const rejected = (name: string, what: NodeKind): OpenOutcome => ({ kind: 'rejected', what, reason: `${name}: not a regular file (${what}): never read` });

export function openRegular(path: string): OpenOutcome {
  const name = basename(path);
  let before: Stats;
  try {
    before = lstatSync(path);
  } catch (e) {
    return errnoOutcome(name, e);
  }
  const k = kindOf(before);
  if (k !== 'file') return rejected(name, k);
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') return rejected(name, 'symlink');
    return errnoOutcome(name, e);
  }
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch (e) {
    closeSync(fd);
    return errnoOutcome(name, e);
  }
  const k2 = kindOf(st);
  if (k2 !== 'file') {
    closeSync(fd);
    return rejected(name, k2);
  }
  if (st.ino !== before.ino || st.dev !== before.dev) {
    // Replaced between lstat and open: look again when it settles.
    closeSync(fd);
    return { kind: 'unreadable', code: 'ECHANGED', reason: `${name}: replaced while it was being opened` };
  }
  return { kind: 'opened', file: { fd, path, name, stat: { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev } } };
}

function errnoOutcome(name: string, e: unknown): OpenOutcome {
  const code = (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
  if (code === 'ENOENT') return { kind: 'gone' };
  const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code;
  return { kind: 'unreadable', code, reason: `${name}: cannot be opened (${why}): taken again when it changes` };
}
