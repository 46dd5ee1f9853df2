/** What the query commands share: the database argument and --since. */
import { existsSync } from 'node:fs';
import { openReader, type Db } from '../store/db.js';
import { QueryError } from '../store/queries.js';
import { DEFAULT_DB } from './commands/daemon.js';

export const dbOption = { type: 'string', default: DEFAULT_DB, describe: 'SQLite database (env PINLEDGER_DB)' } as const;

export function openDb(file: string): Db {
  if (!existsSync(file)) throw new QueryError(`No database at ${file}: ingest traces first (pinledger daemon, or pinledger ingest FILE)`);
  return openReader(file);
}

/** `--since`: an ISO date or time, or a duration back from now such as 30m, 12h, 7d. */
export function parseSince(v: string | undefined, now = Date.now()): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)\s*(s|m|h|d)$/.exec(v);
  if (m) return now - Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new QueryError(`--since ${JSON.stringify(v)}: expected an ISO date/time or a duration such as 30m, 12h, 7d`);
  return t;
}

/** A one-line chart of a step series: one character per column, the maximum in each. */
export function sparkline(points: readonly [number, number][], width = 60): string {
  if (points.length === 0) return '';
  const blocks = ' ▁▂▃▄▅▆▇█';
  const first = points[0]![0];
  const last = points[points.length - 1]![0];
  const span = Math.max(1, last - first + 1);
  const cols = Math.min(width, span);
  const max = Math.max(...points.map((p) => p[1]));
  const out: number[] = new Array<number>(cols).fill(-1);
  let value = 0;
  let i = 0;
  for (let c = 0; c < cols; c++) {
    const end = first + ((c + 1) * span) / cols;
    let colMax = value;
    while (i < points.length && points[i]![0] < end) {
      value = points[i]![1];
      colMax = Math.max(colMax, value);
      i++;
    }
    out[c] = colMax;
  }
  return out.map((v) => (max === 0 ? blocks[0] : blocks[Math.round((v / max) * 8)])).join('');
}
