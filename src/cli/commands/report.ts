/** `pinledger report --trace T --out FILE`: one self-contained HTML report. */
import { writeFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { CHART_COLUMNS, renderReport, seriesKey } from '../../report/html.js';
import { accounting, findingGroups, listFindings, requireTrace, timelineColumns, traceSeqRange } from '../../store/queries.js';
import { dbOption, openDb, requirePid } from '../query-args.js';
import { guestMemoryOf, guestMemoryOption } from '../size-arg.js';
import { nonEmpty, outFile, wholeNumber } from '../usage-error.js';

interface Args {
  db: string;
  trace: string;
  out: string;
  pid?: number;
  'guest-memory'?: bigint;
}

export const reportCommand: CommandModule<object, Args> = {
  command: 'report',
  describe: 'Write one self-contained HTML report of a trace: timeline chart, memlock answer, findings, divergences',
  builder: (y: Argv) =>
    y
      .option('db', dbOption)
      .option('trace', { type: 'string', demandOption: true, coerce: nonEmpty('--trace') })
      .option('out', { alias: 'o', type: 'string', default: 'report.html', describe: 'the HTML file to write', coerce: outFile('-o/--out') })
      .option('pid', { type: 'number', describe: 'only this process', coerce: wholeNumber('--pid') })
      .option('guest-memory', guestMemoryOption)
      .example('$0 report --trace host42/vm-7f3a --out vm.html', 'a page to attach to a ticket')
      .example('$0 report --trace host42/vm-7f3a --pid 4242 -o qemu.html', 'one process of the trace') as unknown as Argv<Args>,
  handler: (a) => {
    const db = openDb(a.db);
    const trace = requireTrace(db, a.trace);
    requirePid(db, a.trace, a.pid);
    // No timeline is loaded whole: each is cut into one column per pixel of the chart by SQLite.
    const rows = accounting(db, a.trace, { ...(a.pid === undefined ? {} : { pid: a.pid }), timeline: false });
    const range = traceSeqRange(db, a.trace) ?? [0, Math.max(1, trace.last_seq)];
    const series = new Map(rows.map((r) => [seriesKey(r.backend, r.pid), timelineColumns(db, a.trace, r.backend, r.pid, range[0], range[1], CHART_COLUMNS)]));
    const guestMemory = guestMemoryOf(a['guest-memory'], trace.guest_memory);
    const html = renderReport({
      traceId: a.trace,
      pageSize: trace.page_size,
      accounting: rows,
      series,
      seqRange: range,
      events: (db.prepare('SELECT events FROM traces WHERE trace_id = ?').get(a.trace) as { events: number }).events,
      guestMemory,
      findingGroups: findingGroups(db, a.trace),
      divergences: listFindings(db, { trace: a.trace, code: 'DESIGN_DIVERGENCE', limit: 1000 }),
      generatedAt: new Date().toISOString(),
    });
    writeFileSync(a.out, html);
    process.stdout.write(`${a.out}: report of trace ${a.trace}\n`);
  },
};
