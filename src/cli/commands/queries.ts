/**
 * The audit commands: traces, findings, accounting, state, diff, sql. Each
 * reads the database only, prints aligned tables, or with --json a stable
 * document (README). Unknown traces and bad questions exit 2.
 */
import type { Argv, CommandModule } from 'yargs';
import { BACKENDS, BACKEND_NAMES } from '../../model/backends/index.js';
import type { DifferentialReplay } from '../../model/replay/differential.js';
import type { BackendSnapshot } from '../../model/vfio/driver.js';
import { replayAt, replaySegments } from '../../store/rebuild.js';
import { type AccountingRow, QueryError, accounting, listFindings, listTraces, readOnlySqlRows, requireTrace, segmentsOf, timelineColumns, timelinePoints, timelineSpan } from '../../store/queries.js';
import { formatKiB, formatPages, formatSize, plural, streamTable, table, thousands } from '../format.js';
import { guestMemoryOf, guestMemoryOption } from '../size-arg.js';
import { answerOfRow, formatLimit, memlockSentence, sentencePrefix } from '../../report/memlock.js';
import { decidingDesigns } from '../../replay/designs.js';
import { dbOption, openDb, parseSince, requirePid, sinceOption, sparkline } from '../query-args.js';
import { designPair, nonEmpty, wholeNumber } from '../usage-error.js';

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const write = (s: string): void => void process.stdout.write(s);
const bigintHex = (_k: string, x: unknown): unknown => (typeof x === 'bigint' ? '0x' + x.toString(16) : x);

function* mapRows<T, U>(rows: Iterable<T>, f: (r: T) => U): Generator<U> {
  for (const r of rows) yield f(r);
}

/** Items of an array written one per line as they come, in chunks: the array is never held whole. */
function streamArray<T>(items: Iterable<T>, indent: string, encode: (x: T) => string): void {
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

/** `sql --json`: {"columns": [...], "rows": [{...}, ...]}, each row on its own line. */
function streamJsonRows(columns: string[], rows: Iterable<unknown[]>): void {
  write(`{\n  "columns": ${JSON.stringify(columns)},\n  "rows": `);
  streamArray(rows, '  ', (values) => JSON.stringify(Object.fromEntries(columns.map((c, i) => [c, values[i]])), bigintHex));
  write('\n}\n');
}
const json = (v: unknown): void => out(JSON.stringify(v, bigintHex, 2));
const when = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString().replace('.000Z', 'Z'));

interface Common {
  db: string;
  json: boolean;
}
const jsonOption = { type: 'boolean', default: false, describe: 'print a JSON document' } as const;

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
      lines.push(`${f.trace_id} seq ${f.seq} [${f.backend}] ${f.severity} ${f.code}: ${f.message}`);
      for (const c of f.context) lines.push(`    ${JSON.stringify(c)}`);
      lines.push(`  > ${JSON.stringify(f.event)}`);
    }
    if (truncated) lines.push(`(stopped at --limit ${a.limit}; more findings match: raise --limit)`);
    out(lines.length ? lines.join('\n') : 'no findings');
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
    out(lines.join('\n'));
  },
};

type StateArgs = Common & { trace: string; at?: number; pid?: number };

/** The backend's view in the snake_case of every --json document. */
function snakeSnapshot(b: BackendSnapshot) {
  return {
    design: b.design,
    v2: b.v2,
    dma_avail: b.dmaAvail,
    pgsize_bitmap: b.pgsizeBitmap,
    iova_ranges: b.iovaRanges.map((r) => [r.start, r.end]),
    domains: b.domains.map((d) => ({ id: d.id, iommu: d.unit, groups: d.groups, cache_coherent: d.cacheCoherent, mapped_pages: d.mappedPages, extents: d.entries })),
    mediated_groups: b.emulatedGroups,
    dmas: b.dmas.map((m) => ({ iova: m.iova, size: m.size, vaddr: m.vaddr, prot: m.prot, pid: m.pid, pinned: m.iommuMapped, charged_pages: m.charged, external_pins: m.vpfns })),
  };
}

function describeState(d: DifferentialReplay) {
  return Object.fromEntries(
    [...d.replayers].map(([name, r]) => {
      const core = r.vfio!;
      const containers = [...core.containers].map((c) => ({
        id: c.id,
        pid: c.pid,
        fd_open: c.fdOpen,
        groups: c.groups.map((g) => g.spec.id),
        backend: c.backend ? snakeSnapshot(c.backend.snapshot()) : null,
      }));
      const groups = [...core.groups.values()].map((g) => ({
        id: g.spec.id,
        kind: g.spec.kind,
        open: g.fileOpen,
        container: g.container?.id ?? null,
        devices_open: [...g.openDevices],
      }));
      const processes = [...(r.modelEnv?.processes.values() ?? [])].map((p) => ({ pid: p.pid, locked_vm: p.lockedVm, memlock_limit: p.memlockLimit === 'unlimited' ? 'unlimited' : p.memlockLimit, cap_ipc_lock: p.capIpcLock }));
      return [name, { seq: r.lastSeq, processes, containers, groups }];
    }),
  );
}

/** `state --pid P`: that process, its containers and the groups in them. */
function onlyPid(st: ReturnType<typeof describeState>, pid: number): ReturnType<typeof describeState> {
  return Object.fromEntries(
    Object.entries(st).map(([name, s]) => {
      const containers = s.containers.filter((c) => c.pid === pid);
      const ids = new Set(containers.map((c) => c.id));
      return [name, { ...s, processes: s.processes.filter((p) => p.pid === pid), containers, groups: s.groups.filter((g) => g.container !== null && ids.has(g.container)) }];
    }),
  );
}

export const stateCommand: CommandModule<object, StateArgs> = {
  command: 'state',
  describe: 'Containers, groups, domains, DMA mappings and pins at the end of a trace, or just after event SEQ',
  builder: (y: Argv) =>
    y
      .option('db', dbOption)
      .option('json', jsonOption)
      .option('trace', { type: 'string', demandOption: true, coerce: nonEmpty('--trace') })
      .option('at', { type: 'number', describe: 'just after this seq (replays the segment file again)', coerce: wholeNumber('--at') })
      .option('pid', { type: 'number', describe: 'only this process and its containers', coerce: wholeNumber('--pid') })
      .example('$0 state --trace host42/vm-7f3a --at 1200', 'what was mapped after event 1200') as unknown as Argv<StateArgs>,
  handler: async (a) => {
    const db = openDb(a.db);
    const pageSize = requireTrace(db, a.trace).page_size;
    requirePid(db, a.trace, a.pid);
    const d = await replayAt(db, a.trace, a.at);
    const st = a.pid === undefined ? describeState(d) : onlyPid(describeState(d), a.pid);
    if (a.json) return json({ trace_id: a.trace, at: a.at ?? null, backends: st });
    const lines: string[] = [];
    for (const [name, s] of Object.entries(st)) {
      lines.push(`${name} after seq ${s.seq}`);
      lines.push(table(s.processes.map((p) => [String(p.pid), formatPages(p.locked_vm, pageSize), typeof p.memlock_limit === 'string' ? p.memlock_limit : formatSize(p.memlock_limit)]), ['pid', 'locked_vm', 'RLIMIT_MEMLOCK']));
      for (const c of s.containers) {
        const b = c.backend;
        lines.push(`  container ${c.id} (pid ${c.pid}${c.fd_open ? '' : ', fd closed'}): groups ${c.groups.join(', ') || 'none'}${b ? `, ${b.v2 ? 'type1v2' : 'type1'}, ${b.dmas.length} mappings, dma_avail ${b.dma_avail}` : ', no backend'}`);
        if (!b) continue;
        for (const dom of b.domains) lines.push(`    domain ${dom.id} on ${dom.iommu}: groups ${dom.groups.join(', ')}, ${dom.mapped_pages} pages mapped in ${dom.extents} extents`);
        if (b.mediated_groups.length) lines.push(`    mediated groups: ${b.mediated_groups.join(', ')}`);
        if (b.dmas.length) {
          lines.push(
            table(
              b.dmas.map((m) => ['    0x' + m.iova.toString(16), formatSize(m.size), '0x' + m.vaddr.toString(16), String(m.pid), m.pinned ? 'yes' : 'no', String(m.charged_pages), String(m.external_pins)]),
              ['    iova', 'size', 'vaddr', 'pid', 'pinned', 'charged', 'ext pins'],
            ),
          );
        }
      }
    }
    out(lines.join('\n'));
  },
};

type DiffArgs = Common & { trace: string; backends: string };

export const diffCommand: CommandModule<object, DiffArgs> = {
  command: 'diff',
  describe: 'Where two designs disagree on a trace: results, charges, findings, first divergence',
  builder: (y: Argv) =>
    y
      .option('db', dbOption)
      .option('json', jsonOption)
      .option('trace', { type: 'string', demandOption: true, coerce: nonEmpty('--trace') })
      .option('backends', { type: 'string', default: 'upstream,rfc-v5', describe: `two designs of ${BACKEND_NAMES.join(', ')}, comma separated`, coerce: designPair })
      .example('$0 diff --trace host42/vgpu --backends upstream,rfc-v5', 'the 2016 design against today') as unknown as Argv<DiffArgs>,
  handler: async (a) => {
    const db = openDb(a.db);
    const names = a.backends.split(',').map((s) => s.trim());
    if (names.length !== 2 || names.some((n) => !BACKENDS[n]) || names[0] === names[1]) {
      throw new QueryError(`--backends takes two different designs of: ${Object.keys(BACKENDS).join(', ')}`);
    }
    const [A, B] = names as [string, string];
    requireTrace(db, a.trace);
    // Replayed again from the segment files, so any two designs compare.
    const results: { seq: number; event: string; [k: string]: unknown }[] = [];
    const charges: { seq: number; pid: number; [k: string]: unknown }[] = [];
    let differingResults = 0;
    let differingCharges = 0;
    const d = await replaySegments(db, a.trace, segmentsOf(db, a.trace), undefined, new Map([[A, BACKENDS[A]!], [B, BACKENDS[B]!]]), undefined, (e, dr) => {
      const ra = dr.replayers.get(A)!;
      const rb = dr.replayers.get(B)!;
      const oa = ra.outcomes.pop()!;
      const ob = rb.outcomes.pop()!;
      const event = e.type === 'ioctl' ? e.call.cmd : e.type;
      if (oa.ret !== ob.ret) {
        differingResults++;
        if (results.length < 50) results.push({ seq: e.seq, event, [A]: oa.ret, [B]: ob.ret });
      }
      const la = ra.modelEnv!.processes;
      const lb = rb.modelEnv!.processes;
      for (const pid of new Set([...la.keys(), ...lb.keys()])) {
        const x = la.get(pid)?.lockedVm ?? 0;
        const y = lb.get(pid)?.lockedVm ?? 0;
        if (x !== y) {
          differingCharges++;
          if (charges.length < 50) charges.push({ seq: e.seq, pid, [A]: x, [B]: y });
        }
      }
    });
    const byCode = (name: string) => {
      const m: Record<string, number> = {};
      for (const f of d.replayers.get(name)!.findings) if (f.code !== 'DESIGN_DIVERGENCE') m[f.code] = (m[f.code] ?? 0) + 1;
      return m;
    };
    const first = d.replayers.get(A)!.findings.find((f) => f.code === 'DESIGN_DIVERGENCE') ?? null;
    const memlock = (name: string) => Object.fromEntries([...d.replayers.get(name)!.memlockRequired()].map(([pid, m]) => [pid, Number(m.bytes)]));
    const doc = {
      trace_id: a.trace,
      backends: [A, B],
      first_divergence: first && { seq: first.seq, message: first.message, details: first.details },
      results: { differing: differingResults, first: results },
      charges: { differing_events: differingCharges, first: charges },
      memlock_required: { [A]: memlock(A), [B]: memlock(B) },
      findings: { [A]: byCode(A), [B]: byCode(B) },
    };
    if (a.json) return json(doc);
    const lines = [`trace ${a.trace}: ${A} vs ${B}`];
    lines.push(first ? `first divergence at seq ${first.seq}: ${first.message}` : 'the designs never disagree');
    lines.push(`results differ at ${differingResults} events${results.length ? ':' : ''}`);
    if (results.length) lines.push(table(results.map((r) => [String(r.seq), r.event, String(r[A]), String(r[B])]), ['seq', 'event', A, B]));
    lines.push(`charges differ after ${differingCharges} events${charges.length ? ' (first ones):' : ''}`);
    if (charges.length) lines.push(table(charges.slice(0, 10).map((c) => [String(c.seq), String(c.pid), String(c[A]), String(c[B])]), ['seq', 'pid', `${A} pages`, `${B} pages`]));
    const pids = new Set([...Object.keys(doc.memlock_required[A]!), ...Object.keys(doc.memlock_required[B]!)]);
    lines.push(table([...pids].map((p) => [p, String(doc.memlock_required[A]![p] ?? 0), String(doc.memlock_required[B]![p] ?? 0)]), ['pid', `${A} memlock bytes`, `${B} memlock bytes`]));
    const codes = new Set([...Object.keys(doc.findings[A]!), ...Object.keys(doc.findings[B]!)]);
    if (codes.size) lines.push(table([...codes].sort().map((c) => [c, String(doc.findings[A]![c] ?? 0), String(doc.findings[B]![c] ?? 0)]), ['finding', A, B]));
    out(lines.join('\n'));
  },
};

type SqlArgs = Common & { query: string };

export const sqlCommand: CommandModule<object, SqlArgs> = {
  command: 'sql <query>',
  describe: 'Read-only SQL on the documented schema (anything but a read is refused)',
  builder: (y: Argv) =>
    y
      .positional('query', { type: 'string', demandOption: true, describe: 'one SELECT (or WITH ... SELECT)', coerce: nonEmpty('the query') })
      .option('db', dbOption)
      .option('json', jsonOption)
      .example('$0 sql "SELECT code, count(*) FROM findings GROUP BY code"', 'findings by code') as unknown as Argv<SqlArgs>,
  handler: (a) => {
    const db = openDb(a.db);
    try {
      const r = readOnlySqlRows(db, a.query);
      // Streamed: a result of millions of rows is written as it is read.
      if (a.json) return streamJsonRows(r.columns, r.rows);
      streamTable(mapRows(r.rows, (row) => row.map((v) => String(v ?? 'NULL'))), r.columns, write);
    } catch (e) {
      if (e instanceof QueryError) throw e;
      throw new QueryError(`SQL error: ${(e as Error).message}`);
    }
  },
};
