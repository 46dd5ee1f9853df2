/**
 * What the audit commands share to print: a line, a JSON document (bigints as
 * hex), an array streamed item by item, and the --db/--json arguments' types.
 */
import { printable } from '../format.js';

export const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');
export const write = (s: string): void => void process.stdout.write(s);
export const bigintHex = (_k: string, x: unknown): unknown => (typeof x === 'bigint' ? '0x' + x.toString(16) : x);
export const json = (v: unknown): void => out(JSON.stringify(v, bigintHex, 2));

export interface Common {
  db: string;
  json: boolean;
}
export const jsonOption = { type: 'boolean', default: false, describe: 'print a JSON document' } as const;

/** Items of an array written one per line as they come, in chunks: the array is never held whole. */
export function streamArray<T>(items: Iterable<T>, indent: string, encode: (x: T) => string): void {
  let chunk = '[';
  let first = true;
  for (const x of items) {
    chunk += (first ? '\n' : ',\n') + indent + '  ' + encode(x);
    first = false;
    if (chunk.length > 1 << 16) {
      write(chunk);
      chunk = '';
    }
  }
  write(chunk + (first ? ']' : '\n' + indent + ']'));
}

/** Human text (not JSON) line by line through printable(): nothing from a trace reaches the terminal raw. */
export const outText = (s: string): void => out(s.split('\n').map(printable).join('\n'));
