/**
 * The replay of one segment into the store, inside the ingest's
 * transaction: the trace row, findings (folded past the limit), locked_vm
 * change points, accounting, and the state after the segment. Returns
 * what it ended in; the caller commits or rolls back. Limits are checked as
 * it goes (events per segment, live containers, mappings): over one, it
 * stops with a quarantine reason and nothing of the segment is kept.
 */
import type { TraceHeader } from '../model/events.js';
import { memlockBytes } from '../model/memlock.js';
import type { DifferentialReplay } from '../model/replay/differential.js';
import type { ProcessAccounting } from '../model/replay/replayer.js';
import { saveReplay } from '../model/state/snapshot.js';
import type { SegmentReader } from '../trace/reader.js';
import type { Db } from './db.js';
import type { FindingWriter } from './finding-writer.js';
import { topologyOf } from './identity.js';
import { MAPPING_CHECK_EVERY, overLimit, tooManyEvents, type IngestLimits } from './limits.js';

export interface TraceRow {
  trace_id: string;
  backends: string;
  last_segment: number;
  last_seq: number;
  events: number;
}

export interface SegmentJob {
  name: string;
  header: TraceHeader;
  /** The trace as stored, undefined for segment 0. */
  trace: TraceRow | undefined;
  replay: DifferentialReplay;
  reader: SegmentReader;
  limits: IngestLimits;
  contextLines: number;
  started: number;
  shouldStop?: () => boolean;
  onProgress?: (bytesRead: number) => void;
}

export type SegmentDone =
  | { kind: 'stored'; events: number; findings: number; firstSeq: number | null; lastSeq: number }
  | { kind: 'quarantine'; reason: string }
  | { kind: 'aborted' };

/** SQLite's INTEGER is signed 64-bit: a limit beyond it can never be reached by a charge, so it is stored as the largest. */
const INT64_MAX = (1n << 63n) - 1n;

export class SegmentReplay {
  private readonly s;

  constructor(
    db: Db,
    private readonly findingWriter: FindingWriter,
    private readonly job: SegmentJob,
  ) {
    this.s = {
      peaks: db.prepare('SELECT backend, pid, peak_locked_vm, peak_seq, peak_event FROM accounting WHERE trace_id = ?'),
      newTrace: db.prepare(
        `INSERT OR IGNORE INTO traces (trace_id, backends, last_segment, last_seq, events, first_seen, updated_at, page_size, guest_memory, host, topology, identity_recorded)
         VALUES (?, ?, -1, -1, 0, ?, ?, ?, ?, ?, ?, 1)`,
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

  /** `onEvents` is told the count as it grows (for the result of an aborted ingest). */
  async run(onEvents: (n: number) => void): Promise<SegmentDone> {
    const { header, trace, replay, reader, limits, name } = this.job;
    const s = this.s;
    reader.parser.continueAfter(trace ? trace.last_seq : -1);
    const err = replay.beginSegment(header);
    if (err) return { kind: 'quarantine', reason: `${name}:1: field segment: ${err}` };

    // The last locked_vm recorded per design and pid: change points only.
    const last = new Map<string, Map<number, number>>();
    for (const [n, r] of replay.replayers) last.set(n, new Map(r.lockedVm().current));
    // The peak per design and pid, with the event that reached it.
    const peaks = new Map<string, { value: number; seq: number | null; event: string | null }>();
    for (const row of s.peaks.all(header.traceId) as { backend: string; pid: number; peak_locked_vm: number; peak_seq: number | null; peak_event: string | null }[]) {
      peaks.set(`${row.backend}/${row.pid}`, { value: row.peak_locked_vm, seq: row.peak_seq, event: row.peak_event });
    }
    // The lines before the current one, for a finding's context.
    const context: string[] = [];
    const counts = { error: 0, warning: 0, info: 0 };
    const backends = JSON.stringify([...replay.replayers.keys()]);
    const started = this.job.started;
    s.newTrace.run(header.traceId, backends, started, started, header.pageSize, header.guestMemory ?? null, header.host ?? null, topologyOf(header));
    const findings = this.findingWriter.begin(header.traceId, header.segment, limits.maxFindingsPerCode);
    let events = 0;
    let found = 0;
    let firstSeq: number | null = null;
    let lastSeq = trace ? trace.last_seq : -1;
    for await (const batch of reader.batches()) {
      for (const [k, e] of batch.entries()) {
        const line = reader.batchLines[k]!;
        if (this.job.shouldStop?.()) return { kind: 'aborted' };
        if (events >= limits.maxEventsPerSegment) return { kind: 'quarantine', reason: tooManyEvents(name, limits) };
        replay.apply(e);
        events++;
        onEvents(events);
        firstSeq ??= e.seq;
        lastSeq = e.seq;
        const over = overLimit(name, header.traceId, e.seq, replay, limits, events % MAPPING_CHECK_EVERY === 0);
        if (over) return { kind: 'quarantine', reason: over };
        for (const [n, r] of replay.replayers) {
          const fs = r.takeFindings();
          if (fs.length > 0) {
            found += fs.length;
            for (const f of fs) counts[f.severity]++;
            findings.add(n, fs, line, context);
          }
          const seen = last.get(n)!;
          const env = r.modelEnv!;
          for (const p of env.processes.values()) {
            if (seen.get(p.pid) !== p.lockedVm) {
              s.insertLocked.run(header.traceId, n, p.pid, e.seq, p.lockedVm);
              seen.set(p.pid, p.lockedVm);
              const key = `${n}/${p.pid}`;
              const peak = peaks.get(key);
              if (!peak || p.lockedVm > peak.value) peaks.set(key, { value: p.lockedVm, seq: e.seq, event: line });
            }
          }
          for (const [pid, v] of seen) {
            if (v !== 0 && !env.processes.has(pid)) {
              s.insertLocked.run(header.traceId, n, pid, e.seq, 0);
              seen.set(pid, 0);
            }
          }
        }
        context.push(line);
        if (context.length > this.job.contextLines) context.shift();
        if (events % 4096 === 0) this.job.onProgress?.(reader.bytesRead());
      }
    }
    const over = overLimit(name, header.traceId, lastSeq, replay, limits, true);
    if (over) return { kind: 'quarantine', reason: over };
    findings.finish();
    s.upsertTrace.run({
      trace_id: header.traceId,
      backends,
      last_segment: header.segment,
      last_seq: lastSeq,
      events,
      now: Date.now(),
      ...counts,
      guest_memory: header.guestMemory ?? null,
    });
    this.writeAccounting(peaks);
    s.insertState.run(header.traceId, header.segment, saveReplay(replay));
    return { kind: 'stored', events, findings: found, firstSeq, lastSeq };
  }

  private writeAccounting(peaks: Map<string, { value: number; seq: number | null; event: string | null }>): void {
    const { header, replay } = this.job;
    const pageShift = BigInt(Math.log2(header.pageSize));
    for (const [name, r] of replay.replayers) {
      for (const [pid, a] of r.accounting()) {
        const at = peaks.get(`${name}/${pid}`);
        const m = memlockRow(a, pageShift);
        this.s.upsertAccounting.run({
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
  }
}

/** The memlock columns of one process, in bytes: NULL for no limit (unlimited, or CAP_IPC_LOCK). */
function memlockRow(a: ProcessAccounting, pageShift: bigint): { required: bigint; limit: bigint | null; short: bigint } {
  const m = memlockBytes(a, pageShift);
  return { ...m, limit: m.limit !== null && m.limit > INT64_MAX ? INT64_MAX : m.limit };
}
