/** `pinledger report --trace T --out FILE`: one self-contained HTML report. */
import { writeFileSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { renderReport } from '../../report/html.js';
import { accounting, listFindings, requireTrace } from '../../store/queries.js';
import { dbOption, openDb } from '../query-args.js';

interface Args {
  db: string;
  trace: string;
  out: string;
}

export const reportCommand: CommandModule<object, Args> = {
  command: 'report',
  describe: 'Write one self-contained HTML report of a trace: timeline chart, memlock answer, findings, divergences',
  builder: (y: Argv) =>
    y
      .option('db', dbOption)
      .option('trace', { type: 'string', demandOption: true })
      .option('out', { type: 'string', default: 'report.html' })
      .example('$0 report --trace host42/vm-7f3a --out vm.html', 'a page to attach to a ticket') as unknown as Argv<Args>,
  handler: (a) => {
    const db = openDb(a.db);
    const html = renderReport({
      traceId: a.trace,
      pageSize: requireTrace(db, a.trace).page_size,
      accounting: accounting(db, a.trace),
      findings: listFindings(db, { trace: a.trace, limit: 100000 }),
      generatedAt: new Date().toISOString(),
    });
    writeFileSync(a.out, html);
    process.stdout.write(`${a.out}: report of trace ${a.trace}\n`);
  },
};
