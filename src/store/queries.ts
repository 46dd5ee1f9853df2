/**
 * The audit queries: read-only questions an operator asks the store. Each
 * returns plain objects; the CLI formats them. All of them read through a
 * read-only connection, so they work while the daemon writes (WAL).
 */
import { orderDesigns } from '../replay/designs.js';
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
  /** Highest peak locked_vm of any process under any design, in pages. */
  peak_locked_vm: number;
  /** The memlock answer of that peak, bytes. */
  memlock_required: number;
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
              (SELECT count(DISTINCT pid) FROM accounting a WHERE a.trace_id = t.trace_id) AS processes,
              (SELECT max(peak_locked_vm) FROM accounting a WHERE a.trace_id = t.trace_id) AS peak,
              (SELECT max(memlock_required) FROM accounting a WHERE a.trace_id = t.trace_id) AS memlock
         FROM traces t
        WHERE t.updated_at >= @since
       UNION ALL
       SELECT s.trace_id, 4096, '[]', 0, min(s.started_at), max(s.finished_at), 0, 0, 0, 0, count(*), 0, 0, 0
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
    peak: number | null;
    memlock: number | null;
  }[];
  return rows
    .map((r): TraceSummary => ({
      trace_id: r.trace_id,
      page_size: r.page_size,
      segments: r.segments,
      quarantined: r.quarantined,
      status: r.quarantined > 0 ? 'quarantined' : 'ok',
      events: r.events,
      processes: r.processes,
      backends: JSON.parse(r.backends) as string[],
      peak_locked_vm: r.peak ?? 0,
      memlock_required: r.memlock ?? 0,
      findings: { error: r.findings_error, warning: r.findings_warning, info: r.findings_info },
      first_seen: r.first_seen,
      updated_at: r.updated_at,
    }))
    .filter((t) => !opts.status || t.status === opts.status);
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
      `SELECT f.id, f.trace_id, f.segment, f.backend, f.code, f.severity, f.seq, f.message, f.details, f.event, f.context
         FROM findings f ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
        ORDER BY f.id LIMIT @limit`,
    )
    .all(params) as (Omit<FindingRow, 'details' | 'event' | 'context'> & { details: string; event: string | null; context: string | null })[];
  return rows.map((r) => ({
    ...r,
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
  peak_by_cause: { direct: number; pins: number; shared: number };
  peak_seq: number | null;
  peak_event: unknown;
  timeline: [number, number][];
}

export function accounting(db: Db, traceId: string, opts: { pid?: number; backend?: string } = {}): AccountingRow[] {
  requireTrace(db, traceId);
  const rows = db
    .prepare(
      `SELECT backend, pid, peak_locked_vm, final_locked_vm, memlock_required, memlock_limit, cap_ipc_lock, memlock_short,
              limit_refusals, first_refusal_seq, first_refusal_event, containers, peak_direct, peak_pins, peak_shared, peak_seq, peak_event
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
    peak_seq: number | null;
    peak_event: string | null;
  }[];
  const tl = db.prepare('SELECT seq, locked_vm FROM locked_vm WHERE trace_id = ? AND backend = ? AND pid = ? ORDER BY seq');
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
    peak_by_cause: { direct: r.peak_direct, pins: r.peak_pins, shared: r.peak_shared },
    peak_seq: r.peak_seq,
    peak_event: r.peak_event === null ? null : (JSON.parse(r.peak_event) as unknown),
    timeline: (tl.all(traceId, r.backend, r.pid) as { seq: number; locked_vm: number }[]).map((x) => [x.seq, x.locked_vm]),
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
  const stmt = db.prepare(sql);
  if (!stmt.readonly || !stmt.reader) throw new QueryError('Only a read (SELECT, or a WITH ... SELECT) is allowed');
  return { columns: stmt.columns().map((c) => c.name), rows: stmt.all() as Record<string, unknown>[] };
}
