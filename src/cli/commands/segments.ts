/**
 * `pinledger segments`: the intake ledger, every file the daemon or
 * `ingest` took and the state it ended in (newest first).
 */
import type { Argv, CommandModule } from 'yargs';
import { FILE_STATUSES, listFiles, type FileStatus } from '../../store/files.js';
import { dbOption, openDb } from '../query-args.js';
import { table } from '../format.js';
import { wholeNumber } from '../usage-error.js';
import { type Common, json, jsonOption, out } from './output.js';

type Args = Common & { status?: FileStatus; limit: number };

const when = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

export const segmentsCommand: CommandModule<object, Args> = {
  command: 'segments',
  describe: 'List the files taken (the intake ledger): name, state, trace, segment, reason, where it was moved, when',
  builder: (y: Argv) =>
    y
      .option('db', dbOption)
      .option('json', jsonOption)
      .option('status', { choices: FILE_STATUSES, describe: 'only files in this state' })
      .option('limit', { type: 'number', default: 1000, describe: 'at most this many, newest first (the output says when more match)', coerce: wholeNumber('--limit', 1) })
      .example('$0 segments --status quarantined', 'the files that were refused, and why') as unknown as Argv<Args>,
  handler: (a) => {
    const db = openDb(a.db);
    const rows = listFiles(db, { ...(a.status ? { status: a.status } : {}), limit: a.limit + 1 });
    const truncated = rows.length > a.limit;
    if (truncated) rows.length = a.limit;
    if (a.json) return json({ files: rows, truncated });
    if (rows.length === 0) return out(a.status ? `no files ${a.status}` : 'no files taken yet');
    const lines = [
      table(
        rows.map((r) => [r.name, r.status, r.trace_id ?? '', r.segment === null ? '' : String(r.segment), r.reason ?? '', r.moved_to ?? '', when(r.updated_at)]),
        ['file', 'status', 'trace', 'segment', 'reason', 'moved to', 'when'],
      ),
    ];
    if (truncated) lines.push(`(stopped at --limit ${a.limit}; more files match: raise --limit)`);
    out(lines.join('\n'));
  },
};
