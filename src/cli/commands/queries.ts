/**
 * The audit commands: traces, findings, accounting (state, diff and sql are
 * in state.ts, diff.ts and sql.ts). Each
 * reads the database only, prints aligned tables, or with --json a stable
 * document (README). Unknown traces and bad questions exit 2.
 */
import type { Argv, CommandModule } from 'yargs';
import { BACKEND_NAMES } from '../../model/backends/index.js';
import { type AccountingRow, accounting, listFindings, listTraces, requireTrace, timelineColumns, timelinePoints, timelineSpan } from '../../store/queries.js';
import { formatKiB, formatPages, plural, printable, table, thousands } from '../format.js';
import { guestMemoryOf, guestMemoryOption } from '../size-arg.js';
import { answerOfRow, formatLimit, memlockSentence, sentencePrefix } from '../../report/memlock.js';
import { decidingDesigns } from '../../replay/designs.js';
import { dbOption, openDb, parseSince, requirePid, sinceOption, sparkline } from '../query-args.js';
import { nonEmpty, wholeNumber } from '../usage-error.js';
import { type Common, bigintHex, json, jsonOption, out, outText, streamArray, write } from './output.js';

const when = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString().replace('.000Z', 'Z'));


export const tracesCommand: CommandModule<object, Common & { status?: string; since?: string }> = {
  command: 'traces',
  describe: 'List traces: segments, status, events, processes, peak locked memory, findings by severity',
  builder: (y: Argv) =>
    y
      .option('db', dbOption)
      .option('json', jsonOption)
      .option('status', { choices: ['ok', 'quarantined'], describe: 'only traces in this state' })
      .option('since', sinceOption('only traces updated since (ISO time, or 30m, 12h, 7d)'))
      .example('$0 traces --since 24h', 'what came in today') as unknown as Argv<Common & { status?: string; since?: string }>,
  handler: (a) => {
    const db = openDb(a.db);
    const since = parseSince(a.since);
    const rows = listTraces(db, { ...(a.status ? { status: a.status as 'ok' } : {}), ...(since !== undefined ? { since } : {}) });
    if (a.json) return json({ traces: rows });
    out(
      table(
        rows.map((t) => [
          t.trace_id,
          String(t.segments),
          t.status,
          thousands(t.events),
          String(t.processes),
          formatPages(t.peak_locked_vm, t.page_size),
          t.design === null ? '' : formatKiB(BigInt(t.memlock_required)),
          t.design === null ? '' : t.memlock_limit === null ? 'none' : formatKiB(BigInt(t.memlock_limit)),
          t.design === null ? '' : t.memlock_short > 0 ? `short by ${formatKiB(BigInt(t.memlock_short))}` : 'enough',
          `${t.findings.error}/${t.findings.warning}/${t.findings.info}`,
          when(t.updated_at),
        ]),
        ['trace', 'segments', 'status', 'events', 'processes', 'peak locked_vm', 'memlock needed', 'limit', 'verdict', 'err/warn/info', 'updated'],
      ),
    );
  },
};

type FindingArgs = Common & { trace?: string; code?: string; severity?: string; backend?: string; since?: string; limit: number };

export const findingsCommand: CommandModule<object, FindingArgs> = {
  command: 'findings',
  describe: 'List findings with the event that caused each and the events before it',
  builder: (y: Argv) =>
    y
      .option('db', dbOption)
      .option('json', jsonOption)
      .option('trace', { type: 'string', describe: 'only this trace', coerce: nonEmpty('--trace') })
      .option('code', { type: 'string', describe: 'e.g. ACCT_DOUBLE_CHARGE', coerce: nonEmpty('--code') })
      .option('severity', { choices: ['error', 'warning', 'info'] })
      .option('backend', { choices: BACKEND_NAMES, describe: 'only findings of this design' })
      .option('since', sinceOption('only from segments ingested since (ISO time, or 30m, 12h, 7d)'))
      .option('limit', { type: 'number', default: 100, describe: 'at most this many (the output says when more match)', coerce: wholeNumber('--limit', 1) })
      .example('$0 findings --severity error --trace host42/vm-7f3a', 'the errors of one trace') as unknown as Argv<FindingArgs>,
  handler: (a) => {
    const db = openDb(a.db);
    const since = parseSince(a.since);
    const rows = listFindings(db, {
      ...(a.trace !== undefined ? { trace: a.trace } : {}),
      ...(a.code !== undefined ? { code: a.code } : {}),
      ...(a.severity !== undefined ? { severity: a.severity } : {}),
      ...(a.backend !== undefined ? { backend: a.backend } : {}),
      ...(since !== undefined ? { since } : {}),
      // One more than asked, to know whether --limit cut the list.
      limit: a.limit + 1,
    });
    const truncated = rows.length > a.limit;
    if (truncated) rows.length = a.limit;
    if (a.json) return json({ findings: rows, truncated });
    const lines: string[] = [];
    for (const f of rows) {
      const folded = f.aggregate ? ` (${thousands(f.occurrences)} occurrences, seq ${f.seq}..${f.last_seq ?? f.seq}; this is the first)` : '';
      lines.push(printable(`${f.trace_id} seq ${f.seq} [${f.backend}] ${f.severity} ${f.code}: ${f.message}${folded}`));
      for (const c of f.context) lines.push(`    ${JSON.stringify(c)}`);
      lines.push(`  > ${JSON.stringify(f.event)}`);
    }
    if (truncated) lines.push(`(stopped at --limit ${a.limit}; more findings match: raise --limit)`);
    outText(lines.length ? lines.join('\n') : 'no findings');
  },
};

type AcctArgs = Common & { trace: string; pid?: number; backend?: string; 'guest-memory'?: bigint };

export const accountingCommand: CommandModule<object, AcctArgs> = {
  command: 'accounting',
  describe: 'Locked memory of a trace: timeline, peak and the event that reached it, final, charge by cause, the memlock answer',
  builder: (y: Argv) =>
    y
      .option('db', dbOption)
      .option('json', jsonOption)
      .option('trace', { type: 'string', demandOption: true, coerce: nonEmpty('--trace') })
      .option('pid', { type: 'number', describe: 'only this process', coerce: wholeNumber('--pid') })
      .option('backend', { choices: BACKEND_NAMES, describe: 'only this design' })
      .option('guest-memory', guestMemoryOption)
      .example('$0 accounting --trace host42/vm-7f3a', 'how much memlock the VM really needed, per design')
      .example('$0 accounting --trace host42/vm-7f3a --guest-memory 16G', "and whether libvirt's default limit for a 16 GiB guest is enough") as unknown as Argv<AcctArgs>,
  handler: (a) => {
    const db = openDb(a.db);
    const trace = requireTrace(db, a.trace);
    const pageSize = trace.page_size;
    requirePid(db, a.trace, a.pid);
    // Timelines are read one point at a time below: a 5M-event trace has millions.
    const rows = accounting(db, a.trace, { ...(a.pid !== undefined ? { pid: a.pid } : {}), ...(a.backend !== undefined ? { backend: a.backend } : {}), timeline: false });
    const guest = guestMemoryOf(a['guest-memory'], trace.guest_memory);
    const deciding = new Set(decidingDesigns(trace.backends));
    const sentence = (r: AccountingRow) =>
      sentencePrefix(r.backend, deciding) + memlockSentence(answerOfRow(r), guest);
    if (a.json) {
      // The document as json() would print it, each timeline streamed into its place.
      const marker = (i: number) => `\u0000timeline ${i}\u0000`;
      const doc = JSON.stringify(
        {
          trace_id: a.trace,
          answer: rows.map(sentence),
          accounting: rows.map((r, i) => ({ ...r, role: deciding.has(r.backend) ? 'deciding' : 'comparison', timeline: marker(i) })),
        },
        bigintHex,
        2,
      );
      let rest = doc;
      rows.forEach((r, i) => {
        const at = rest.indexOf(JSON.stringify(marker(i)));
        write(rest.slice(0, at));
        streamArray(timelinePoints(db, a.trace, r.backend, r.pid), '      ', (p) => JSON.stringify(p));
        rest = rest.slice(at + JSON.stringify(marker(i)).length);
      });
      return write(rest + '\n');
    }
    const lines: string[] = rows.map(sentence);
    for (const r of rows) {
      lines.push('', `${r.backend}${deciding.has(r.backend) ? '' : ' (comparison)'} pid ${r.pid}`);
      const span = timelineSpan(db, a.trace, r.backend, r.pid);
      const chart = span ? sparkline(timelineColumns(db, a.trace, r.backend, r.pid, span[0], span[1], Math.min(60, span[1] - span[0] + 1))) : '';
      lines.push(`  timeline  |${chart}|  seq ${span?.[0] ?? '-'}..${span?.[1] ?? '-'}`);
      lines.push(`  peak      ${formatPages(r.peak_locked_vm, pageSize)} at seq ${r.peak_seq ?? '-'}: ${JSON.stringify(r.peak_event)}`);
      lines.push(`  final     ${formatPages(r.final_locked_vm, pageSize)}`);
      const limit = r.memlock_limit === null ? (r.cap_ipc_lock ? 'none applied (CAP_IPC_LOCK)' : 'unlimited') : formatLimit(BigInt(r.memlock_limit));
      lines.push(`  limit     ${limit}${r.limit_refusals ? `; refused ${plural(r.limit_refusals, 'operation')}, the first at seq ${r.first_refusal?.seq ?? '-'}` : ''}`);
      const need = BigInt(r.memlock_required);
      lines.push(`  needed    ${formatLimit(need)}: the peak with RLIMIT_MEMLOCK unlimited${r.memlock_short ? `, short by ${formatKiB(BigInt(r.memlock_short))}` : ''}`);
      lines.push(`  by cause  direct ${thousands(r.peak_by_cause.direct)}, pins ${thousands(r.peak_by_cause.pins)}, of which frames charged again ${thousands(r.peak_by_cause.shared)}${r.peak_by_cause.mlock === undefined ? '' : `, mlock ${thousands(r.peak_by_cause.mlock)}`} (pages, at the needed peak)`);
    }
    outText(lines.join('\n'));
  },
};
