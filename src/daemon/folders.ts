/**
 * The drop folder's processed/ and quarantine/: real directories (lstat,
 * never followed) owned by the daemon's euid, created 0750 when missing;
 * anything else refuses the start. Moves pick free names by lstat (a
 * dangling symlink is a taken name too) and rename, which moves a link or
 * node itself, never its target. Reason files are created with
 * O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, and hold only our text.
 */
import { closeSync, constants, lstatSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UsageError } from '../cli/usage-error.js';
import { kindOf } from './safe-open.js';

export interface DropFolder {
  processed: string;
  quarantine: string;
}

/** The folder refused: one line, exit 2, nothing ingested. */
export class FolderError extends UsageError {
  override name = 'FolderError';
}

/** The mode missing subfolders are created with. */
export const SUBFOLDER_MODE = 0o750;

function euid(): number {
  return typeof process.geteuid === 'function' ? process.geteuid() : 0;
}

/** Checks (and creates when missing) one subfolder. */
export function checkSubfolder(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new FolderError(`${path}: cannot be checked (${(e as NodeJS.ErrnoException).code})`);
    // Not recursive: the drop folder exists; a name created in between makes mkdir fail, and the check below runs.
    try {
      mkdirSync(path, { mode: SUBFOLDER_MODE });
    } catch (m) {
      if ((m as NodeJS.ErrnoException).code !== 'EEXIST') throw new FolderError(`${path}: cannot be created (${(m as NodeJS.ErrnoException).code})`);
    }
    st = lstatSync(path);
  }
  const k = kindOf(st);
  if (k !== 'directory') throw new FolderError(`${path} is a ${k === 'file' ? 'regular file' : k}, not a directory: refusing to start (it must be a real directory owned by uid ${euid()})`);
  if (st.uid !== euid()) throw new FolderError(`${path} is owned by uid ${st.uid}, not by the daemon's uid ${euid()}: refusing to start`);
}

export function checkFolders(dir: string): DropFolder {
  const f = { processed: join(dir, 'processed'), quarantine: join(dir, 'quarantine') };
  checkSubfolder(f.processed);
  checkSubfolder(f.quarantine);
  return f;
}

const taken = (p: string): boolean => {
  try {
    lstatSync(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
};

/** The path itself, or with .1, .2, ... before the extension when taken (by anything, a dangling link too). */
export function freeName(path: string): string {
  if (!taken(path)) return path;
  const m = /^(.*?)((\.jsonl?)?(\.gz)?)$/.exec(path)!;
  for (let i = 1; ; i++) {
    const p = `${m[1]}.${i}${m[2]}`;
    if (!taken(p)) return p;
  }
}

/** Our reason text, in a file nobody else can read, that cannot be a link or an existing file. */
export function writeReason(dest: string, reason: string): string {
  const file = `${dest}.reason.txt`;
  const fd = openSync(file, constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_WRONLY, 0o600);
  try {
    writeSync(fd, `${reason}\n`);
  } finally {
    closeSync(fd);
  }
  return file;
}

/** Moves `file` into `folder` under a free name; returns where it went. */
export function moveInto(file: string, folder: string): string {
  const dest = freeName(join(folder, basename(file)));
  renameSync(file, dest);
  return dest;
}

/** Moves `file` into quarantine/ with its reason file; the reason is written first (a crash in between leaves the file to be taken again). */
export function quarantineFile(file: string, folder: string, reason: string): string {
  const dest = freeName(join(folder, basename(file)));
  // A reason without its file: left by a crash between the two steps (quarantine/ is ours alone, 0750).
  if (taken(`${dest}.reason.txt`)) unlinkSync(`${dest}.reason.txt`);
  writeReason(dest, reason);
  renameSync(file, dest);
  return dest;
}
