/** Human-readable sizes and aligned tables for terminal output. */
import { formatSize, thousands } from '../report/size.js';

export { formatKiB, formatSize, thousands } from '../report/size.js';

/**
 * Text from a trace or a database made safe for a terminal: control
 * characters (C0, DEL, C1), line and paragraph separators and bidi overrides
 * are shown escaped (ESC as \x1b), so nothing a trace holds can move the
 * cursor, clear the screen or reorder a line. Every human output goes through it.
 */
export function printable(s: string): string {
  return s.replace(UNPRINTABLE, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? '\\x' + n.toString(16).padStart(2, '0') : '\\u' + n.toString(16).padStart(4, '0');
  });
}
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** "524,192 pages (2.0 GiB)". */
export function formatPages(pages: number, pageSize: number): string {
  return `${thousands(pages)} page${pages === 1 ? '' : 's'} (${formatSize(BigInt(pages) * BigInt(pageSize))})`;
}

/** "1 container", "2 containers". */
export function plural(n: number, noun: string): string {
  return `${thousands(n)} ${noun}${n === 1 ? '' : 's'}`;
}

/**
 * Rows aligned under a header, columns two spaces apart, every cell through
 * printable(). Loops over the rows (no spread into Math.max).
 */
export function table(cells: readonly (readonly string[])[], head: readonly string[]): string {
  const rows = cells.map((r) => r.map((c) => printable(c ?? '')));
  const header = head.map(printable);
  const widths = header.map((h) => h.length);
  for (const r of rows) {
    for (let i = 0; i < widths.length; i++) {
      const n = (r[i] ?? '').length;
      if (n > widths[i]!) widths[i] = n;
    }
  }
  const line = (r: readonly string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const lines = new Array<string>(rows.length + 1);
  lines[0] = line(header);
  for (let i = 0; i < rows.length; i++) lines[i + 1] = line(rows[i]!);
  return lines.join('\n');
}

/**
 * A table of rows that come one at a time (an `sql` result of millions):
 * column widths from the header and the first `sample` rows, then every row
 * written as it comes, in chunks. A later cell wider than its column pushes
 * the rest of its line right rather than holding the whole result. Cells
 * go through printable().
 */
export function streamTable(rows: Iterable<readonly string[]>, columns: readonly string[], write: (s: string) => void, sample = 1000): number {
  const header = columns.map(printable);
  const source = rows[Symbol.iterator]();
  const it: Iterator<readonly string[]> = {
    next: () => {
      const r = source.next();
      return r.done ? r : { value: r.value.map((c) => printable(c ?? '')) };
    },
  };
  const head: (readonly string[])[] = [];
  while (head.length < sample) {
    const r = it.next();
    if (r.done) break;
    head.push(r.value);
  }
  const widths = header.map((h) => h.length);
  for (const r of head) for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i]!, (r[i] ?? '').length);
  const line = (r: readonly string[]) => r.map((c, i) => (c ?? '').padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  let chunk = line(header);
  let n = 0;
  const emit = (r: readonly string[]) => {
    chunk += '\n' + line(r);
    n++;
    if (chunk.length > 1 << 16) {
      write(chunk);
      chunk = '';
    }
  };
  for (const r of head) emit(r);
  for (let r = it.next(); !r.done; r = it.next()) emit(r.value);
  write(chunk + '\n');
  return n;
}
