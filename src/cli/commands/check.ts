/**
 * `pinledger check --db F`: SQLite's integrity_check and quick facts.
 * Exit 0 when the database is sound, 1 when integrity_check reports
 * problems (printed one per line), 2 when the file is not a pinledger
 * database.
 */
import type { Argv, CommandModule } from 'yargs';
import { checkStore } from '../../store/check.js';
import { FILE_STATUSES } from '../../store/files.js';
import { dbOption } from '../query-args.js';
import { printable } from '../format.js';
import { type Common, json, jsonOption, out } from './output.js';

export const checkCommand: CommandModule<object, Common> = {
  command: 'check',
  describe: "Check a database: SQLite's integrity_check, schema version, traces, segments, files by state",
  builder: (y: Argv) =>
    y
      .option('db', dbOption)
      .option('json', jsonOption)
      .example('$0 check --db /var/lib/pinledger/pinledger.db', 'after a crash or a disk error') as unknown as Argv<Common>,
  handler: (a) => {
    const r = checkStore(a.db);
    process.exitCode = r.ok ? 0 : 1;
    if (a.json) return json(r);
    const lines = [
      `database   ${printable(r.file)}`,
      `schema     version ${r.schema_version}${r.schema_version === r.known_version ? '' : ` (this pinledger knows ${r.known_version})`}`,
      `traces     ${r.traces ?? 'unreadable'}`,
      `segments   ${r.segments ? `${r.segments.ingested} ingested, ${r.segments.quarantined} quarantined` : 'unreadable'}`,
      `files      ${r.files ? FILE_STATUSES.map((s) => `${s} ${r.files![s]}`).join(', ') : 'no ledger (schema before 5)'}`,
      `integrity  ${r.ok ? 'ok' : `${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`}`,
      ...r.problems.map((p) => printable(p)),
    ];
    out(lines.join('\n'));
  },
};
