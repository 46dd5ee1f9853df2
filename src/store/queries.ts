/**
 * The audit queries: read-only questions an operator asks the store. Each
 * returns plain objects; the CLI formats them. All of them read through a
 * read-only connection, so they work while the daemon writes (WAL).
 */
import { decidingDesigns, orderDesigns } from '../replay/designs.js';
import { StepDownsampler, type StepColumns } from '../report/downsample.js';
import { normaliseMessage, sortGroups, type FindingGroup } from '../report/findings.js';
import type { Db } from './db.js';

/** A question the store cannot answer as asked (unknown trace, a write in `sql`): exit status 2. */
export class QueryError extends Error {
  override name = 'QueryError';
}

export interface TraceSummary {
  trace_id: string;
  page_size: number;
  segments: number;
  quarantined: number;
  status: 'ok' | 'quarantined';
  events: number;
  processes: number;
  backends: string[];
  /** The design the headline numbers come from: the captured one (upstream) when replayed. */
  design: string | null;
  /** Highest peak locked_vm (under the limit in force) of any process under that design, in pages. */
  peak_locked_vm: number;
  /** The memlock answer (bytes) of the process that needs the most, its limit in force (null: none) and what it lacked. */
  memlock_required: number;
  memlock_limit: number | null;
  memlock_short: number;
  /** Operations RLIMIT_MEMLOCK refused, over the trace's processes under that design. */
  limit_refusals: number;
  findings: { error: number; warning: number; info: number };
  first_seen: number | null;
  updated_at: number | null;
}

export function listTraces(db: Db, opts: { status?: 'ok' | 'quarantined'; since?: number } = {}): TraceSummary[] {
  const rows = db
    .prepare(
      `SELECT t.trace_id, t.page_size, t.backends, t.events, t.first_seen, t.updated_at, t.findings_error, t.findings_warning, t.findings_info,
              (SELECT count(*) FROM segments s WHERE s.trace_id = t.trace_id AND s.status = 'ingested') AS segments,
              (SELECT count(*) FROM segments s WHERE s.trace_id = t.trace_id AND s.status = 'quarantined') AS quarantined,
              (SELECT count(DISTINCT pid) FROM accounting a WHERE a.trace_id = t.trace_id) AS processes
         FROM traces t
        WHERE t.updated_at >= @since
       UNION ALL
       SELECT s.trace_id, 4096, '[]', 0, min(s.started_at), max(s.finished_at), 0, 0, 0, 0, count(*), 0
         FROM segments s
        WHERE s.trace_id IS NOT NULL AND s.finished_at >= @since AND NOT EXISTS (SELECT 1 FROM traces t WHERE t.trace_id = s.trace_id)
        GROUP BY s.trace_id
        ORDER BY 1`,
    )
    .all({ since: opts.since ?? 0 }) as {
    trace_id: string;
    page_size: number;
    backends: string;
    events: number;
    first_seen: number | null;
    updated_at: number | null;
    findings_error: number;
    findings_warning: number;
    findings_info: number;
    segments: number;
    quarantined: number;
    processes: number;
  }[];
  const memlock = headlineMemlock(db);
  return rows
    .map((r): TraceSummary => ({
      trace_id: r.trace_id,
      page_size: r.page_size,
      segments: r.segments,
      quarantined: r.quarantined,
      status: r.quarantined > 0 ? 'quarantined' : 'ok',
      events: r.events,
      processes: r.processes,
      backends: orderDesigns(JSON.parse(r.backends) as string[]),
      ...(memlock.get(r.trace_id) ?? { design: null, peak_locked_vm: 0, memlock_required: 0, memlock_limit: null, memlock_short: 0, limit_refusals: 0 }),
      findings: { error: r.findings_error, warning: r.findings_warning, info: r.findings_info },
      first_seen: r.first_seen,
      updated_at: r.updated_at,
    }))
    .filter((t) => !opts.status || t.status === opts.status);
}

type Headline = Pick<TraceSummary, 'design' | 'peak_locked_vm' | 'memlock_required' | 'memlock_limit' | 'memlock_short' | 'limit_refusals'>;

/**
 * Per trace, the memlock headline from its primary design (the captured
 * one when it was replayed): the process that needs the most.
 */
function headlineMemlock(db: Db): Map<string, Headline> {
  const rows = db
    .prepare('SELECT trace_id, backend, peak_locked_vm, memlock_required, memlock_limit, memlock_short, limit_refusals FROM accounting ORDER BY trace_id, pid')
    .all() as { trace_id: string; backend: string; peak_locked_vm: number; memlock_required: number; memlock_limit: number | null; memlock_short: number; limit_refusals: number | null }[];
  const byTrace = new Map<string, typeof rows>();
  for (const r of rows) {
    const list = byTrace.get(r.trace_id);
    if (list) list.push(r);
    else byTrace.set(r.trace_id, [r]);
  }
  const out = new Map<string, Headline>();
  for (const [trace, list] of byTrace) {
    const design = decidingDesigns([...new Set(list.map((r) => r.backend))])[0]!;
    const h: Headline = { design, peak_locked_vm: 0, memlock_required: 0, memlock_limit: null, memlock_short: 0, limit_refusals: 0 };
    for (const r of list) {
      if (r.backend !== design) continue;
      h.peak_locked_vm = Math.max(h.peak_locked_vm, r.peak_locked_vm);
      h.limit_refusals += r.limit_refusals ?? 0;
      if (r.memlock_required >= h.memlock_required) {
        h.memlock_required = r.memlock_required;
        h.memlock_limit = r.memlock_limit;
      }
      h.memlock_short = Math.max(h.memlock_short, r.memlock_short);
    }
    out.set(trace, h);
  }
  return out;
}

/** The trace, or a QueryError that says what exists. */
export function requireTrace(
  db: Db,
  traceId: string,
): { trace_id: string; backends: string[]; last_segment: number; last_seq: number; page_size: number; guest_memory: number | null } {
  const row = db.prepare('SELECT trace_id, backends, last_segment, last_seq, page_size, guest_memory FROM traces WHERE trace_id = ?').get(traceId) as
    | { trace_id: string; backends: string; last_segment: number; last_seq: number; page_size: number; guest_memory: number | null }
    | undefined;
  if (row) return { ...row, backends: orderDesigns(JSON.parse(row.backends) as string[]) };
  const names = (db.prepare('SELECT trace_id FROM traces ORDER BY trace_id LIMIT 11').all() as { trace_id: string }[]).map((r) => r.trace_id);
  const total = (db.prepare('SELECT count(*) AS n FROM traces').get() as { n: number }).n;
  const listed = names.slice(0, 10).join(', ');
  throw new QueryError(
    total === 0 ? `No trace ${JSON.stringify(traceId)}: the database holds no traces yet` : `No trace ${JSON.stringify(traceId)}; traces: ${listed}${total > 10 ? ` (and ${total - 10} more)` : ''}`,
  );
}

export interface FindingRow {
  id: number;
  trace_id: string;
  segment: number;
  backend: string;
  code: string;
  severity: string;
  seq: number;
  message: string;
  details: Record<string, unknown>;
  event: unknown;
  context: unknown[];
  /** true: a row that stands for `occurrences` findings of this design and code folded past --max-findings-per-code (seq the first, last_seq the last). */
  aggregate: boolean;
  occurrences: number;
  /** The last folded finding's seq (aggregate rows only; null otherwise). */
  last_seq: number | null;
}

export interface FindingFilter {
  trace?: string;
  code?: string;
  severity?: string;
  backend?: string;
  since?: number;
  limit?: number;
}

export function listFindings(db: Db, f: FindingFilter): FindingRow[] {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: f.limit ?? 100 };
  if (f.trace !== undefined) {
    requireTrace(db, f.trace);
    where.push('f.trace_id = @trace');
    params.trace = f.trace;
  }
  if (f.code !== undefined) (where.push('f.code = @code'), (params.code = f.code));
  if (f.severity !== undefined) (where.push('f.severity = @severity'), (params.severity = f.severity));
  if (f.backend !== undefined) (where.push('f.backend = @backend'), (params.backend = f.backend));
  if (f.since !== undefined) {
    where.push(`EXISTS (SELECT 1 FROM segments s WHERE s.trace_id = f.trace_id AND s.segment = f.segment AND s.status = 'ingested' AND s.finished_at >= @since)`);
    params.since = f.since;
  }
  const rows = db
    .prepare(
      `SELECT f.id, f.trace_id, f.segment, f.backend, f.code, f.severity, f.seq, f.message, f.details, f.event, f.context, f.aggregate, f.occurrences, f.last_seq
         FROM findings f ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
        ORDER BY f.id LIMIT @limit`,
    )
    .all(params) as (Omit<FindingRow, 'details' | 'event' | 'context' | 'aggregate'> & { details: string; event: string | null; context: string | null; aggregate: number })[];
  return rows.map((r) => ({
    ...r,
    aggregate: r.aggregate === 1,
    details: JSON.parse(r.details) as Record<string, unknown>,
    event: r.event === null ? null : (JSON.parse(r.event) as unknown),
    context: r.context === null ? [] : (JSON.parse(r.context) as string[]).map((l) => JSON.parse(l) as unknown),
  }));
}

export interface AccountingRow {
  backend: string;
  pid: number;
  /** Pages: the peak under the limit in force. */
  peak_locked_vm: number;
  final_locked_vm: number;
  /** Bytes: the peak of the replay with RLIMIT_MEMLOCK unlimited (the what-if). */
  memlock_required: number;
  /** Bytes: the limit in force, null when none applied (unlimited, or CAP_IPC_LOCK). */
  memlock_limit: number | null;
  cap_ipc_lock: boolean;
  /** Bytes missing from the limit in force (0 when it was enough). */
  memlock_short: number;
  /** Operations refused because of RLIMIT_MEMLOCK (null: stored before schema 3, unknown). */
  limit_refusals: number | null;
  first_refusal: { seq: number; event: string } | null;
  /** Containers the process attached groups to. */
  containers: number;
  /** `mlock` only for a process that locked memory with mlock, mlockall or MAP_LOCKED (trace format 2). */
  peak_by_cause: { direct: number; pins: number; shared: number; mlock?: number };
  peak_seq: number | null;
  peak_event: unknown;
  timeline: [number, number][];
}

/**
 * `timeline: false` leaves every row's timeline empty (the report reads a
 * downsampled one with timelineColumns() instead).
 */
export function accounting(db: Db, traceId: string, opts: { pid?: number; backend?: string; timeline?: boolean } = {}): AccountingRow[] {
  requireTrace(db, traceId);
  const rows = db
    .prepare(
      `SELECT backend, pid, peak_locked_vm, final_locked_vm, memlock_required, memlock_limit, cap_ipc_lock, memlock_short,
              limit_refusals, first_refusal_seq, first_refusal_event, containers, peak_direct, peak_pins, peak_shared, peak_mlock, peak_seq, peak_event
         FROM accounting WHERE trace_id = @trace AND (@pid IS NULL OR pid = @pid) AND (@backend IS NULL OR backend = @backend)
        ORDER BY backend, pid`,
    )
    .all({ trace: traceId, pid: opts.pid ?? null, backend: opts.backend ?? null }) as {
    backend: string;
    pid: number;
    peak_locked_vm: number;
    final_locked_vm: number;
    memlock_required: number;
    memlock_limit: number | null;
    cap_ipc_lock: number;
    memlock_short: number;
    limit_refusals: number | null;
    first_refusal_seq: number | null;
    first_refusal_event: string | null;
    containers: number;
    peak_direct: number;
    peak_pins: number;
    peak_shared: number;
    peak_mlock: number | null;
    peak_seq: number | null;
    peak_event: string | null;
  }[];
  // Raw rows are the [seq, pages] pairs themselves: one array per point, no intermediate objects.
  const rank = new Map(orderDesigns([...new Set(rows.map((r) => r.backend))]).map((b, i) => [b, i]));
  rows.sort((a, b) => rank.get(a.backend)! - rank.get(b.backend)! || a.pid - b.pid);
  return rows.map((r) => ({
    backend: r.backend,
    pid: r.pid,
    peak_locked_vm: r.peak_locked_vm,
    final_locked_vm: r.final_locked_vm,
    memlock_required: r.memlock_required,
    memlock_limit: r.memlock_limit,
    cap_ipc_lock: r.cap_ipc_lock === 1,
    memlock_short: r.memlock_short,
    limit_refusals: r.limit_refusals,
    first_refusal: r.first_refusal_seq === null || r.first_refusal_event === null ? null : { seq: r.first_refusal_seq, event: r.first_refusal_event },
    containers: r.containers,
    peak_by_cause: { direct: r.peak_direct, pins: r.peak_pins, shared: r.peak_shared, ...(r.peak_mlock === null ? {} : { mlock: r.peak_mlock }) },
    peak_seq: r.peak_seq,
    peak_event: r.peak_event === null ? null : (JSON.parse(r.peak_event) as unknown),
    timeline: opts.timeline === false ? [] : [...timelinePoints(db, traceId, r.backend, r.pid)],
  }));
}

export interface StoredSegment {
  segment: number;
  path: string | null;
  first_seq: number | null;
  last_seq: number | null;
}

export function segmentsOf(db: Db, traceId: string): StoredSegment[] {
  return db
    .prepare(`SELECT segment, path, first_seq, last_seq FROM segments WHERE trace_id = ? AND status = 'ingested' ORDER BY segment`)
    .all(traceId) as StoredSegment[];
}

export function segmentState(db: Db, traceId: string, segment: number): string | undefined {
  return (db.prepare('SELECT state FROM segment_state WHERE trace_id = ? AND segment = ?').get(traceId, segment) as { state: string } | undefined)?.state;
}

/** Read-only SQL: a statement that could write is refused before it runs. */
export function readOnlySql(db: Db, sql: string): { columns: string[]; rows: Record<string, unknown>[] } {
  const r = readOnlySqlRows(db, sql);
  return { columns: r.columns, rows: [...r.rows].map((values) => Object.fromEntries(r.columns.map((c, i) => [c, values[i]]))) };
}

/**
 * The same, one row at a time as an array of values in column order, so a
 * result of millions of rows is never held whole (`sql` streams it out).
 */
export function readOnlySqlRows(db: Db, sql: string): { columns: string[]; rows: IterableIterator<unknown[]> } {
  const stmt = db.prepare(sql);
  if (!stmt.readonly || !stmt.reader) throw new QueryError('Only a read (SELECT, or a WITH ... SELECT) is allowed');
  return { columns: stmt.columns().map((c) => c.name), rows: stmt.raw(true).iterate() as IterableIterator<unknown[]> };
}

/** One process's locked_vm change points under one design, in seq order, one at a time. */
export function timelinePoints(db: Db, traceId: string, backend: string, pid: number): IterableIterator<[number, number]> {
  return db
    .prepare('SELECT seq, locked_vm FROM locked_vm WHERE trace_id = ? AND backend = ? AND pid = ? ORDER BY seq')
    .raw(true)
    .iterate(traceId, backend, pid) as IterableIterator<[number, number]>;
}

/** The first and last seq of one process's timeline, null when it has none. */
export function timelineSpan(db: Db, traceId: string, backend: string, pid: number): [number, number] | null {
  const r = db.prepare('SELECT min(seq) AS lo, max(seq) AS hi FROM locked_vm WHERE trace_id = ? AND backend = ? AND pid = ?').get(traceId, backend, pid) as {
    lo: number | null;
    hi: number | null;
  };
  return r.lo === null || r.hi === null ? null : [r.lo, r.hi];
}

/**
 * The seq range of a trace's ingested events (first and last seq), null when
 * none is recorded.
 */
export function traceSeqRange(db: Db, traceId: string): [number, number] | null {
  const r = db.prepare(`SELECT min(first_seq) AS lo, max(last_seq) AS hi FROM segments WHERE trace_id = ? AND status = 'ingested'`).get(traceId) as {
    lo: number | null;
    hi: number | null;
  };
  return r.lo === null || r.hi === null ? null : [r.lo, r.hi];
}

/**
 * One process's locked_vm under one design cut into `columns` over seq
 * [x0, x1] (src/report/downsample.ts): the lowest, highest and last value
 * per column, aggregated by SQLite (GROUP BY column), so a timeline of
 * millions of points never reaches JavaScript as rows.
 */
export function timelineColumns(db: Db, traceId: string, backend: string, pid: number, x0: number, x1: number, columns: number): StepColumns {
  const d = new StepDownsampler(x0, x1, columns);
  const key = { trace: traceId, backend, pid };
  const first = db.prepare('SELECT seq, locked_vm FROM locked_vm WHERE trace_id = @trace AND backend = @backend AND pid = @pid ORDER BY seq LIMIT 1').get(key) as
    | { seq: number; locked_vm: number }
    | undefined;
  if (!first) return d.finish();
  // The column as columnOf() computes it: floor((seq - x0) * columns / span), clamped.
  const groups = db
    .prepare(
      `SELECT g.col, g.lo, g.hi, g.n, l.locked_vm AS last
         FROM (SELECT max(0, min(@columns - 1, CAST((seq - @x0) * @columns / @span AS INTEGER))) AS col,
                      min(locked_vm) AS lo, max(locked_vm) AS hi, count(*) AS n, max(seq) AS last_seq
                 FROM locked_vm WHERE trace_id = @trace AND backend = @backend AND pid = @pid GROUP BY col) g
         JOIN locked_vm l ON l.trace_id = @trace AND l.backend = @backend AND l.pid = @pid AND l.seq = g.last_seq
        ORDER BY g.col`,
    )
    .all({ ...key, x0, columns, span: x1 - x0 + 1 }) as { col: number; lo: number; hi: number; n: number; last: number }[];
  for (const g of groups) d.addAggregate(g.col, g.lo, g.hi, g.last, g.n, first.locked_vm);
  return d.finish();
}

/**
 * A trace's findings grouped by design, code, severity and cause
 * (details.cause, or the message with its numbers taken out:
 * src/report/findings.ts), with the count and the first and last seq, by
 * one GROUP BY: a trace with hundreds of thousands of findings gives a few
 * rows. DESIGN_DIVERGENCE findings are left out (listFindings has them).
 * An aggregate row counts as its occurrences, up to its last seq.
 */
export function findingGroups(db: Db, traceId: string): FindingGroup[] {
  requireTrace(db, traceId);
  db.function('pinledger_normalise', { deterministic: true }, (m: unknown) => normaliseMessage(String(m)));
  const rows = db
    .prepare(
      `SELECT g.backend, g.code, g.severity, g.cause, g.count, g.first_seq, g.last_seq, f.message
         FROM (SELECT backend, code, severity,
                      coalesce(nullif(CASE WHEN instr(details, '"cause"') THEN json_extract(details, '$.cause') END, ''), pinledger_normalise(message)) AS cause,
                      sum(occurrences) AS count, min(seq) AS first_seq, max(coalesce(last_seq, seq)) AS last_seq, min(id) AS first_id
                 FROM findings WHERE trace_id = ? AND code != 'DESIGN_DIVERGENCE'
                GROUP BY backend, code, severity, cause) g
         JOIN findings f ON f.id = g.first_id`,
    )
    .all(traceId) as FindingGroup[];
  return sortGroups(rows.map((r) => ({ ...r, cause: String(r.cause) })), orderDesigns([...new Set(rows.map((r) => r.backend))]));
}
