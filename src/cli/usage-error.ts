/**
 * A mistake in how the command was called: exit status 2, one line on
 * stderr. The helpers below are yargs `coerce` functions, so a bad value
 * fails in yargs' own validation, before any handler runs (nothing is
 * written, no daemon starts).
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { BACKEND_NAMES } from '../model/backends/index.js';
import { UnknownBackendError, parseBackendSpec } from '../replay/designs.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** An option given twice: the last one counts (yargs gives an array). */
function last<T>(v: T | T[]): T {
  return Array.isArray(v) ? (v[v.length - 1] as T) : v;
}

/** A string option that must have a value: `-o` with nothing after it is refused. */
export function nonEmpty(flag: string): (v: string | string[]) => string {
  return (v) => {
    const s = last(v);
    if (typeof s !== 'string' || s === '') throw new UsageError(`${flag} needs a value`);
    return s;
  };
}

/** A file to write: a value, not a directory, in a directory that exists. */
export function outFile(flag: string): (v: string | string[]) => string {
  const value = nonEmpty(flag);
  return (v) => {
    const f = value(v);
    const isDir = (p: string) => {
      try {
        return statSync(p).isDirectory();
      } catch {
        return undefined;
      }
    };
    if (isDir(f)) throw new UsageError(`${flag} ${f}: is a directory`);
    if (isDir(dirname(f)) !== true) throw new UsageError(`${flag} ${f}: no directory ${dirname(f)}`);
    return f;
  };
}

/** A whole number, at least `min` (type: 'number' makes NaN of "abc"). */
export function wholeNumber(flag: string, min = 0): (v: number | number[]) => number {
  return (v) => {
    const n = last(v);
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) {
      // type: 'number' has already made NaN of the text, so only a number is shown.
      const given = typeof n === 'number' && !Number.isNaN(n) ? ` ${n}` : '';
      throw new UsageError(`${flag}${given}: expected a whole number${min > 0 ? ` of at least ${min}` : ''}`);
    }
    return n;
  };
}

/** `--backend`: design names, comma separated, `all` or `auto`; checked by the parser the replay uses. */
export function backendArg(v: string | string[]): string {
  const s = last(v);
  try {
    parseBackendSpec(String(s));
  } catch (e) {
    if (e instanceof UnknownBackendError) throw new UsageError(`--backend: ${e.message}`);
    throw e;
  }
  return String(s);
}

/** A positional with a fixed set of values, checked as it is parsed (before the other arguments' checks). */
export function oneOf<T extends string>(what: string, values: readonly T[]): (v: string) => T {
  return (v) => {
    if (!values.includes(String(v) as T)) throw new UsageError(`${what} ${JSON.stringify(String(v))}: expected ${values.join(', ')}`);
    return String(v) as T;
  };
}

/** Positional trace files: each must exist and be a file (checked before anything is opened or written). */
export function existingFiles(what: string): (v: string | string[]) => string[] {
  return (v) => {
    const files = (Array.isArray(v) ? v : [v]).map(String);
    for (const f of files) {
      let st;
      try {
        st = statSync(f);
      } catch {
        throw new UsageError(`${what} ${f}: no such file`);
      }
      if (!st.isFile()) throw new UsageError(`${what} ${f}: not a file`);
    }
    return files;
  };
}

/** `diff --backends A,B`: two different designs. */
export function designPair(v: string | string[]): string {
  const s = String(last(v));
  const names = s.split(',').map((n) => n.trim());
  if (names.length !== 2 || names.some((n) => !BACKEND_NAMES.includes(n)) || names[0] === names[1]) {
    throw new UsageError(`--backends ${JSON.stringify(s)}: expected two different designs of ${BACKEND_NAMES.join(', ')}, comma separated`);
  }
  return s;
}
