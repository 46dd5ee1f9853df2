/**
 * Ingest of one segment file into the store, as one transaction: all its
 * rows or none. A file already ingested (same content hash) is not
 * replayed again; a segment that arrives before its predecessor waits; a
 * bad file is recorded as quarantined with the reason, and nothing already
 * stored changes. The replay state is restored from the store, so a
 * restart between segments continues the trace exactly.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import type { TraceHeader } from '../model/events.js';
import type { Finding } from '../model/findings.js';
import { DifferentialReplay } from '../model/replay/differential.js';
import type { ProcessAccounting } from '../model/replay/replayer.js';
import { memlockBytes } from '../model/memlock.js';
import { restoreReplay, saveReplay } from '../model/state/snapshot.js';
import type { IommuDriver } from '../model/vfio/driver.js';
import { openSegment } from '../trace/reader.js';
import { TraceError } from '../trace/trace-error.js';
import type { Db } from './db.js';

export type IngestStatus = 'ingested' | 'duplicate' | 'waiting' | 'quarantined' | 'aborted';

export interface IngestResult {
  file: string;
  status: IngestStatus;
  traceId?: string;
  segment?: number;
  events: number;
  findings: number;
  durationMs: number;
  /** For quarantined files: line, field and cause; for waiting ones, what they wait for. */
  reason?: string;
}

export interface IngestOptions {
  /** The designs a new trace is replayed through, chosen from its first header. */
  drivers: (header: TraceHeader) => ReadonlyMap<string, IommuDriver>;
  /** The design captures come from (observed results are checked against it). */
  capturedDesign: string;
  /** Checked between events: when it says stop, the segment is rolled back. */
  shouldStop?: () => boolean;
  /** Called every few thousand events with the bytes read so far. */
  onProgress?: (bytesRead: number) => void;
  /** The kernel release new traces are replayed as (--kernel), overriding their headers' `kernel`. */
  kernel?: string;
}

/** Trace lines kept before each finding's event. */
export const CONTEXT_LINES = 3;

export async function hashFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

interface TraceRow {
  trace_id: string;
  backends: string;
  last_segment: number;
  last_seq: number;
  events: number;
}

export class Ingestor {
  private readonly stmts;

  constructor(
    private readonly db: Db,
    private readonly opts: IngestOptions,
  ) {
    this.stmts = {
      byHash: db.prepare('SELECT status, error, trace_id, segment FROM segments WHERE content_hash = ?'),
      trace: db.prepare('SELECT trace_id, backends, last_segment, last_seq, events FROM traces WHERE trace_id = ?'),
      state: db.prepare('SELECT state FROM segment_state WHERE trace_id = ? AND segment = ?'),
      peaks: db.prepare('SELECT backend, pid, peak_locked_vm, peak_seq, peak_event FROM accounting WHERE trace_id = ?'),
      insertSegment: db.prepare(
        `INSERT INTO segments (trace_id, segment, file_name, content_hash, status, events, first_seq, last_seq, started_at, finished_at, duration_ms, error, path)
         VALUES (@trace_id, @segment, @file_name, @content_hash, @status, @events, @first_seq, @last_seq, @started_at, @finished_at, @duration_ms, @error, @path)`,
      ),
      newTrace: db.prepare(
        `INSERT OR IGNORE INTO traces (trace_id, backends, last_segment, last_seq, events, first_seen, updated_at, page_size, guest_memory)
         VALUES (?, ?, -1, -1, 0, ?, ?, ?, ?)`,
      ),
      upsertTrace: db.prepare(
        `INSERT INTO traces (trace_id, backends, last_segment, last_seq, events, first_seen, updated_at, findings_error, findings_warning, findings_info)
         VALUES (@trace_id, @backends, @last_segment, @last_seq, @events, @now, @now, @error, @warning, @info)
         ON CONFLICT (trace_id) DO UPDATE SET last_segment = excluded.last_segment, last_seq = excluded.last_seq,
           events = traces.events + excluded.events, updated_at = excluded.updated_at,
           findings_error = traces.findings_error + excluded.findings_error,
           findings_warning = traces.findings_warning + excluded.findings_warning,
           findings_info = traces.findings_info + excluded.findings_info,
           guest_memory = coalesce(@guest_memory, traces.guest_memory)`,
      ),
      insertState: db.prepare('INSERT INTO segment_state (trace_id, segment, state) VALUES (?, ?, ?)'),
      insertFinding: db.prepare(
        'INSERT INTO findings (trace_id, segment, backend, code, severity, seq, message, details, event, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      insertLocked: db.prepare('INSERT OR REPLACE INTO locked_vm (trace_id, backend, pid, seq, locked_vm) VALUES (?, ?, ?, ?, ?)'),
      upsertAccounting: db.prepare(
        `INSERT INTO accounting (trace_id, backend, pid, peak_locked_vm, final_locked_vm, memlock_required, peak_direct, peak_pins, peak_shared, peak_mlock, peak_seq, peak_event,
           memlock_limit, cap_ipc_lock, memlock_short, limit_refusals, first_refusal_seq, first_refusal_event, containers)
         VALUES (@trace_id, @backend, @pid, @peak, @final, @required, @direct, @pins, @shared, @mlock, @peak_seq, @peak_event,
           @limit, @cap_ipc_lock, @short, @refusals, @first_refusal_seq, @first_refusal_event, @containers)
         ON CONFLICT (trace_id, backend, pid) DO UPDATE SET peak_locked_vm = excluded.peak_locked_vm, final_locked_vm = excluded.final_locked_vm,
           memlock_required = excluded.memlock_required, peak_direct = excluded.peak_direct, peak_pins = excluded.peak_pins, peak_shared = excluded.peak_shared, peak_mlock = excluded.peak_mlock,
           peak_seq = excluded.peak_seq, peak_event = excluded.peak_event, memlock_limit = excluded.memlock_limit, cap_ipc_lock = excluded.cap_ipc_lock,
           memlock_short = excluded.memlock_short, limit_refusals = excluded.limit_refusals, first_refusal_seq = excluded.first_refusal_seq,
           first_refusal_event = excluded.first_refusal_event, containers = excluded.containers`,
      ),
    };
  }

  /** Records a file that cannot be ingested; the store is otherwise unchanged. */
  private quarantine(file: string, hash: string, started: number, reason: string, header?: TraceHeader): IngestResult {
    const now = Date.now();
    this.stmts.insertSegment.run({
      trace_id: header?.traceId ?? null,
      segment: header?.segment ?? null,
      file_name: basename(file),
      content_hash: hash,
      status: 'quarantined',
      events: 0,
      first_seq: null,
      last_seq: null,
      started_at: started,
      finished_at: now,
      duration_ms: now - started,
      error: reason,
      path: null,
    });
    const r: IngestResult = { file, status: 'quarantined', events: 0, findings: 0, durationMs: now - started, reason };
    if (header) {
      r.traceId = header.traceId;
      r.segment = header.segment;
    }
    return r;
  }

  /** `storedPath`: where the file will be kept once ingested (recorded so queries can replay it again). */
  async ingest(file: string, storedPath: string = file): Promise<IngestResult> {
    const started = Date.now();
    const hash = await hashFile(file);
    const seen = this.stmts.byHash.get(hash) as { status: string; error: string | null; trace_id: string | null; segment: number | null } | undefined;
    if (seen) {
      const r: IngestResult = { file, status: seen.status === 'quarantined' ? 'quarantined' : 'duplicate', events: 0, findings: 0, durationMs: Date.now() - started };
      if (seen.trace_id !== null) r.traceId = seen.trace_id;
      if (seen.segment !== null) r.segment = seen.segment;
      if (seen.error) r.reason = seen.error;
      return r;
    }
    // Stored reasons name the file as it is named in the folders: its base name.
    const reader = openSegment(file, -1, basename(file), true);
    let header: TraceHeader;
    try {
      header = await reader.header();
    } catch (e) {
      if (e instanceof TraceError) return this.quarantine(file, hash, started, e.message);
      throw e;
    }
    const trace = this.stmts.trace.get(header.traceId) as TraceRow | undefined;
    const expected = trace ? trace.last_segment + 1 : 0;
    if (header.segment < expected) {
      return this.quarantine(file, hash, started, `${basename(file)}:1: field segment: segment ${header.segment} of trace ${header.traceId} was already ingested from another file`, header);
    }
    if (header.segment > expected) {
      return {
        file,
        status: 'waiting',
        traceId: header.traceId,
        segment: header.segment,
        events: 0,
        findings: 0,
        durationMs: Date.now() - started,
        reason: `waiting for segment ${expected} of trace ${header.traceId}`,
      };
    }
    return this.replaySegment(file, storedPath, hash, started, header, trace, reader);
  }

  private async replaySegment(
    file: string,
    storedPath: string,
    hash: string,
    started: number,
    header: TraceHeader,
    trace: TraceRow | undefined,
    reader: ReturnType<typeof openSegment>,
  ): Promise<IngestResult> {
    const db = this.db;
    const s = this.stmts;
    let replay: DifferentialReplay;
    if (trace) {
      const row = s.state.get(header.traceId, trace.last_segment) as { state: string };
      replay = restoreReplay(row.state);
    } else {
      replay = new DifferentialReplay(this.opts.drivers(header), this.opts.capturedDesign, this.opts.kernel === undefined ? {} : { kernel: this.opts.kernel });
    }
    reader.parser.continueAfter(trace ? trace.last_seq : -1);
    const err = replay.beginSegment(header);
    if (err) return this.quarantine(file, hash, started, `${basename(file)}:1: field segment: ${err}`, header);

    // The last locked_vm recorded per design and pid: change points only.
    const last = new Map<string, Map<number, number>>();
    for (const [name, r] of replay.replayers) last.set(name, new Map(r.lockedVm().current));
    // The peak per design and pid, with the event that reached it.
    const peaks = new Map<string, { value: number; seq: number | null; event: string | null }>();
    for (const row of s.peaks.all(header.traceId) as { backend: string; pid: number; peak_locked_vm: number; peak_seq: number | null; peak_event: string | null }[]) {
      peaks.set(`${row.backend}/${row.pid}`, { value: row.peak_locked_vm, seq: row.peak_seq, event: row.peak_event });
    }
    // The lines before the current one, for a finding's context.
    const context: string[] = [];
    const counts = { error: 0, warning: 0, info: 0 };

    db.exec('BEGIN IMMEDIATE');
    s.newTrace.run(header.traceId, JSON.stringify([...replay.replayers.keys()]), started, started, header.pageSize, header.guestMemory ?? null);
    let events = 0;
    let findings = 0;
    let firstSeq: number | null = null;
    let lastSeq = trace ? trace.last_seq : -1;
    try {
      for await (const batch of reader.batches()) for (const [k, e] of batch.entries()) {
        const line = reader.batchLines[k]!;
        if (this.opts.shouldStop?.()) {
          db.exec('ROLLBACK');
          return { file, status: 'aborted', traceId: header.traceId, segment: header.segment, events, findings: 0, durationMs: Date.now() - started };
        }
        replay.apply(e);
        events++;
        firstSeq ??= e.seq;
        lastSeq = e.seq;
        for (const [name, r] of replay.replayers) {
          const fs = r.takeFindings();
          if (fs.length > 0) {
            findings += fs.length;
            for (const f of fs) counts[f.severity]++;
            this.storeFindings(header, name, fs, line, context);
          }
          const seen = last.get(name)!;
          const env = r.modelEnv!;
          for (const p of env.processes.values()) {
            if (seen.get(p.pid) !== p.lockedVm) {
              s.insertLocked.run(header.traceId, name, p.pid, e.seq, p.lockedVm);
              seen.set(p.pid, p.lockedVm);
              const key = `${name}/${p.pid}`;
              const peak = peaks.get(key);
              if (!peak || p.lockedVm > peak.value) peaks.set(key, { value: p.lockedVm, seq: e.seq, event: line });
            }
          }
          for (const [pid, v] of seen) {
            if (v !== 0 && !env.processes.has(pid)) {
              s.insertLocked.run(header.traceId, name, pid, e.seq, 0);
              seen.set(pid, 0);
            }
          }
        }
        context.push(line);
        if (context.length > CONTEXT_LINES) context.shift();
        if (events % 4096 === 0) this.opts.onProgress?.(reader.bytesRead());
      }
    } catch (e) {
      db.exec('ROLLBACK');
      if (e instanceof TraceError) return this.quarantine(file, hash, started, e.message, header);
      throw e;
    }
    const now = Date.now();
    s.upsertTrace.run({
      trace_id: header.traceId,
      backends: JSON.stringify([...replay.replayers.keys()]),
      last_segment: header.segment,
      last_seq: lastSeq,
      events,
      now,
      ...counts,
      guest_memory: header.guestMemory ?? null,
    });
    s.insertSegment.run({
      trace_id: header.traceId,
      segment: header.segment,
      file_name: basename(file),
      content_hash: hash,
      status: 'ingested',
      events,
      first_seq: firstSeq,
      last_seq: firstSeq === null ? null : lastSeq,
      started_at: started,
      finished_at: now,
      duration_ms: now - started,
      error: null,
      path: storedPath,
    });
    const pageShift = BigInt(Math.log2(header.pageSize));
    for (const [name, r] of replay.replayers) {
      for (const [pid, a] of r.accounting()) {
        const at = peaks.get(`${name}/${pid}`);
        const m = memlockRow(a, pageShift);
        s.upsertAccounting.run({
          trace_id: header.traceId,
          backend: name,
          pid,
          peak: a.peakLockedVm,
          final: a.finalLockedVm,
          required: m.required,
          direct: a.breakdown.direct,
          pins: a.breakdown.pins,
          shared: a.breakdown.shared,
          mlock: a.breakdown.mlock ?? null,
          peak_seq: at?.seq ?? null,
          peak_event: at?.event ?? null,
          limit: m.limit,
          cap_ipc_lock: a.capIpcLock ? 1 : 0,
          short: m.short,
          refusals: a.refusals?.count ?? 0,
          first_refusal_seq: a.refusals?.firstSeq ?? null,
          first_refusal_event: a.refusals?.firstEvent ?? null,
          containers: a.vfioContainers,
        });
      }
    }
    s.insertState.run(header.traceId, header.segment, saveReplay(replay));
    db.exec('COMMIT');
    return { file, status: 'ingested', traceId: header.traceId, segment: header.segment, events, findings, durationMs: Date.now() - started };
  }

  private storeFindings(header: TraceHeader, backend: string, fs: Finding[], line: string, context: readonly string[]): void {
    const ctx = JSON.stringify(context);
    for (const f of fs) {
      this.stmts.insertFinding.run(header.traceId, header.segment, backend, f.code, f.severity, f.seq, f.message, JSON.stringify(f.details, bigintJson), line, ctx);
    }
  }
}

/** SQLite's INTEGER is signed 64-bit: a limit beyond it can never be reached by a charge, so it is stored as the largest. */
const INT64_MAX = (1n << 63n) - 1n;

/** The memlock columns of one process, in bytes: NULL for no limit (unlimited, or CAP_IPC_LOCK). */
function memlockRow(a: ProcessAccounting, pageShift: bigint): { required: bigint; limit: bigint | null; short: bigint } {
  const m = memlockBytes(a, pageShift);
  return { ...m, limit: m.limit !== null && m.limit > INT64_MAX ? INT64_MAX : m.limit };
}

function bigintJson(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? '0x' + v.toString(16) : v;
}
