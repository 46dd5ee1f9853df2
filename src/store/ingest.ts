/**
 * Ingest of one segment file into the store, as one transaction: all its
 * rows or none (src/store/transaction.ts owns BEGIN/COMMIT/ROLLBACK, and
 * every statement of an ingest runs inside it). A file already ingested
 * (same content hash) is not replayed again; a segment that arrives before
 * its predecessor waits; a bad file is recorded as quarantined with the
 * reason, and nothing already stored changes. The replay state is restored
 * from the store, so a restart between segments continues the trace exactly.
 *
 * Outcomes that store nothing: `aborted` (asked to stop), `changed` (the
 * file's size or mtime moved while it was read: take it again later),
 * `incomplete` (its header promises an end record it does not have yet).
 * Store failures are thrown as StoreFault (transient or fatal), after the
 * rollback. Any other exception of the replay (a bug) quarantines the file
 * with `internal error: ...`, so one file can never wedge the daemon.
 */
import { fstatSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { TraceHeader } from '../model/events.js';
import { DifferentialReplay } from '../model/replay/differential.js';
import { restoreReplay } from '../model/state/snapshot.js';
import type { IommuDriver } from '../model/vfio/driver.js';
import { hashFile } from '../trace/hash.js';
import { IncompleteSegment, StopRequested, openSegment } from '../trace/reader.js';
import { TraceError } from '../trace/trace-error.js';
import type { Db } from './db.js';
import { FileLedger, type FileStatus } from './files.js';
import { FindingWriter } from './finding-writer.js';
import { hostsNote, identityMismatch, type TraceIdentity } from './identity.js';
import { isStringTooLong, limitsOf, stateTooLarge, type IngestLimits } from './limits.js';
import { SegmentReplay, type TraceRow } from './segment-replay.js';
import { StoreFault } from './store-error.js';
import { commit, rollBack, withTransaction, type TxResult } from './transaction.js';

export type IngestStatus = 'ingested' | 'duplicate' | 'waiting' | 'quarantined' | 'aborted' | 'changed' | 'incomplete';

/** A file the daemon opened (O_NOFOLLOW, fstat-checked): read through its fd only, never re-opened by path, never closed here. */
export interface OpenedFile {
  fd: number;
  path: string;
  /** How the file is named in messages and the ledger: its base name in the drop folder. */
  name: string;
  /** fstat at open: a different size or mtime at the end means the file changed while it was read. */
  stat: { size: number; mtimeMs: number; ino: number; dev: number };
}

export interface IngestResult {
  file: string;
  status: IngestStatus;
  traceId?: string;
  segment?: number;
  /** sha256 of the content, when it was read whole (the ledger's key with the name). */
  hash?: string;
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
  /** Checked between events and per chunk read: when it says stop, the segment is rolled back ('aborted'). */
  shouldStop?: () => boolean;
  /** Called every few thousand events with the bytes read so far. */
  onProgress?: (bytesRead: number) => void;
  /** The kernel release new traces are replayed as (--kernel), overriding their headers' `kernel`. */
  kernel?: string;
  /** Size limits (src/store/limits.ts); the defaults for those not given. */
  limits?: Partial<IngestLimits>;
}

/** Trace lines kept before each finding's event. */
export const CONTEXT_LINES = 3;

/** Kept for callers of the old location: hashing lives in src/trace/hash.ts. */
export { hashFile };

interface Source {
  input: string | { fd: number; path: string };
  path: string;
  name: string;
  stat: { size: number; mtimeMs: number };
  /** The size and mtime now (fstat on the fd, or stat of the path). */
  now(): { size: number; mtimeMs: number };
}

function sourceOf(src: string | OpenedFile): Source {
  if (typeof src === 'string') {
    const st = statSync(src);
    // Gone by the end (deleted or renamed away): changed, taken again if it comes back.
    const now = () => statSync(src, { throwIfNoEntry: false }) ?? { size: -1, mtimeMs: -1 };
    return { input: src, path: src, name: basename(src), stat: { size: st.size, mtimeMs: st.mtimeMs }, now };
  }
  return { input: { fd: src.fd, path: src.path }, path: src.path, name: src.name, stat: src.stat, now: () => fstatSync(src.fd) };
}

/** What the transaction of an ingest ended in. */
type Outcome =
  | { kind: 'result'; result: IngestResult }
  | { kind: 'quarantine'; reason: string; header: TraceHeader | undefined }
  | { kind: 'changed' | 'aborted' };

/** One ingest: what is known so far, for the outcome written after a rollback. */
interface Attempt {
  src: Source;
  hash: string;
  started: number;
  storedPath: string;
  header?: TraceHeader;
  events: number;
}

export class Ingestor {
  private readonly stmts;
  private readonly ledger: FileLedger;
  private readonly findings: FindingWriter;
  private readonly limits: IngestLimits;

  constructor(
    private readonly db: Db,
    private readonly opts: IngestOptions,
  ) {
    this.limits = limitsOf(opts.limits);
    this.ledger = new FileLedger(db);
    this.findings = new FindingWriter(db);
    this.stmts = {
      byHash: db.prepare('SELECT status, error, trace_id, segment FROM segments WHERE content_hash = ?'),
      trace: db.prepare('SELECT trace_id, backends, last_segment, last_seq, events, page_size, host, topology, identity_recorded FROM traces WHERE trace_id = ?'),
      state: db.prepare('SELECT state FROM segment_state WHERE trace_id = ? AND segment = ?'),
      insertSegment: db.prepare(
        `INSERT INTO segments (trace_id, segment, file_name, content_hash, status, events, first_seq, last_seq, started_at, finished_at, duration_ms, error, path)
         VALUES (@trace_id, @segment, @file_name, @content_hash, @status, @events, @first_seq, @last_seq, @started_at, @finished_at, @duration_ms, @error, @path)`,
      ),
    };
  }

  /** `storedPath`: where the file will be kept once ingested (recorded so queries can replay it again). */
  async ingest(src: string | OpenedFile, storedPath?: string): Promise<IngestResult> {
    const started = Date.now();
    const s = sourceOf(src);
    let hash: string;
    try {
      hash = await hashFile(s.input, this.opts.shouldStop);
    } catch (e) {
      if (e instanceof StopRequested) return this.result(s, started, 'aborted');
      throw e;
    }
    const a: Attempt = { src: s, hash, started, storedPath: storedPath ?? s.path, events: 0 };
    let outcome: Outcome;
    try {
      outcome = await withTransaction(this.db, () => this.take(a));
    } catch (e) {
      if (e instanceof StoreFault) throw e;
      if (e instanceof StopRequested) return this.result(s, started, 'aborted', a);
      if (e instanceof IncompleteSegment) return this.incomplete(a, e.message);
      outcome = { kind: 'quarantine', reason: this.reasonOf(a, e), header: a.header };
    }
    if (outcome.kind === 'result') return outcome.result;
    if (outcome.kind !== 'quarantine') return this.result(s, started, outcome.kind, a);
    const q = outcome;
    return withTransaction(this.db, async () => (this.changed(a) ? rollBack(this.result(s, started, 'changed', a)) : commit(this.quarantine(a, q.reason, q.header))));
  }

  /** Why a replay that threw quarantines its file: the trace's error, the state limit, or a bug. */
  private reasonOf(a: Attempt, e: unknown): string {
    if (e instanceof TraceError) return e.message;
    if (isStringTooLong(e)) return stateTooLarge(a.src.name, a.header?.traceId ?? '(unknown)', this.limits);
    const msg = e instanceof Error ? e.message : String(e);
    return `internal error: ${msg.replace(/\s*\n\s*/g, ' ').trim() || (e instanceof Error ? e.name : 'unknown')}`;
  }

  private changed(a: Attempt): boolean {
    const now = a.src.now();
    return now.size !== a.src.stat.size || now.mtimeMs !== a.src.stat.mtimeMs;
  }

  private result(s: Source, started: number, status: IngestStatus, a?: Attempt, extra: Partial<IngestResult> = {}): IngestResult {
    const r: IngestResult = { file: s.path, status, events: a?.events ?? 0, findings: 0, durationMs: Date.now() - started, ...extra };
    if (a?.header) {
      r.traceId = a.header.traceId;
      r.segment = a.header.segment;
    }
    if (a && status !== 'aborted' && status !== 'changed') r.hash = a.hash;
    return r;
  }

  private record(a: Attempt, status: FileStatus, r: IngestResult): void {
    this.ledger.record({
      name: a.src.name,
      status,
      hash: a.hash,
      size: a.src.stat.size,
      ...(r.reason !== undefined ? { reason: r.reason } : {}),
      ...(r.traceId !== undefined ? { traceId: r.traceId } : {}),
      ...(r.segment !== undefined ? { segment: r.segment } : {}),
    });
  }

  /** The segment promises an end record it does not have yet: nothing stored but the ledger's note. */
  private async incomplete(a: Attempt, reason: string): Promise<IngestResult> {
    const r = this.result(a.src, a.started, 'incomplete', a, { reason: `${a.src.name}: ${reason}` });
    delete r.hash;
    await withTransaction(this.db, async () => {
      this.ledger.record({ name: a.src.name, status: 'incomplete', reason: r.reason!, size: a.src.stat.size, ...(r.traceId !== undefined ? { traceId: r.traceId, segment: r.segment! } : {}) });
      return commit(undefined);
    });
    return r;
  }

  /** Inside the transaction: everything from the duplicate check to the last row. */
  private async take(a: Attempt): Promise<TxResult<Outcome>> {
    const { src, hash, started } = a;
    const seen = this.stmts.byHash.get(hash) as { status: string; error: string | null; trace_id: string | null; segment: number | null } | undefined;
    if (seen) {
      const extra: Partial<IngestResult> = {};
      if (seen.trace_id !== null) extra.traceId = seen.trace_id;
      if (seen.segment !== null) extra.segment = seen.segment;
      if (seen.error) extra.reason = seen.error;
      const status = seen.status === 'quarantined' ? 'quarantined' : 'duplicate';
      const r = this.result(src, started, status, a, extra);
      if (this.changed(a)) return rollBack({ kind: 'changed' });
      this.record(a, status, r);
      return commit({ kind: 'result', result: r });
    }
    // Stored reasons name the file as it is named in the folders: its base name.
    const reader = openSegment(src.input, -1, src.name, true, { maxBytes: this.limits.maxFileBytes, ...(this.opts.shouldStop ? { shouldStop: this.opts.shouldStop } : {}) });
    const header = await reader.header();
    a.header = header;
    const trace = this.stmts.trace.get(header.traceId) as (TraceRow & TraceIdentity) | undefined;
    const expected = trace ? trace.last_segment + 1 : 0;
    if (header.segment < expected) {
      const reason = `${src.name}:1: field segment: segment ${header.segment} of trace ${header.traceId} was already ingested from another file${hostsNote(header, trace!)}`;
      return rollBack({ kind: 'quarantine', reason, header });
    }
    const mismatch = trace && identityMismatch(src.name, header, trace);
    if (mismatch) return rollBack({ kind: 'quarantine', reason: mismatch, header });
    if (header.segment > expected) {
      const r = this.result(src, started, 'waiting', a, { reason: `waiting for segment ${expected} of trace ${header.traceId}` });
      if (this.changed(a)) return rollBack({ kind: 'changed' });
      this.record(a, 'waiting', r);
      return commit({ kind: 'result', result: r });
    }
    let replay: DifferentialReplay;
    if (trace) {
      const row = this.stmts.state.get(header.traceId, trace.last_segment) as { state: string } | undefined;
      if (!row) throw new Error(`no saved state for segment ${trace.last_segment} of trace ${header.traceId}`);
      replay = restoreReplay(row.state);
    } else {
      replay = new DifferentialReplay(this.opts.drivers(header), this.opts.capturedDesign, this.opts.kernel === undefined ? {} : { kernel: this.opts.kernel });
    }
    const sr = new SegmentReplay(this.db, this.findings, {
      name: src.name,
      header,
      trace,
      replay,
      reader,
      limits: this.limits,
      contextLines: CONTEXT_LINES,
      started,
      ...(this.opts.shouldStop ? { shouldStop: this.opts.shouldStop } : {}),
      ...(this.opts.onProgress ? { onProgress: this.opts.onProgress } : {}),
    });
    const done = await sr.run((n) => (a.events = n));
    if (done.kind === 'aborted') return rollBack({ kind: 'aborted' });
    if (done.kind === 'quarantine') return rollBack({ kind: 'quarantine', reason: done.reason, header });
    const now = Date.now();
    this.stmts.insertSegment.run({
      trace_id: header.traceId,
      segment: header.segment,
      file_name: src.name,
      content_hash: hash,
      status: 'ingested',
      events: done.events,
      first_seq: done.firstSeq,
      last_seq: done.firstSeq === null ? null : done.lastSeq,
      started_at: started,
      finished_at: now,
      duration_ms: now - started,
      error: null,
      path: a.storedPath,
    });
    const r = this.result(src, started, 'ingested', a, { events: done.events, findings: done.findings });
    // Last, just before COMMIT: a file that moved while it was read is taken again, not stored half.
    if (this.changed(a)) return rollBack({ kind: 'changed' });
    this.record(a, 'ingested', r);
    return commit({ kind: 'result', result: r });
  }

  /** Records a file that cannot be ingested (in its own transaction); the store is otherwise unchanged. */
  private quarantine(a: Attempt, reason: string, header: TraceHeader | undefined): IngestResult {
    const now = Date.now();
    this.stmts.insertSegment.run({
      trace_id: header?.traceId ?? null,
      segment: header?.segment ?? null,
      file_name: a.src.name,
      content_hash: a.hash,
      status: 'quarantined',
      events: 0,
      first_seq: null,
      last_seq: null,
      started_at: a.started,
      finished_at: now,
      duration_ms: now - a.started,
      error: reason,
      path: null,
    });
    a.events = 0;
    const r = this.result(a.src, a.started, 'quarantined', a, { reason });
    this.record(a, 'quarantined', r);
    return r;
  }
}
