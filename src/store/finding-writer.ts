/**
 * Writes a segment's findings: each as a row of its own while its trace
 * has fewer than `limit` rows of that design and code, past that folded
 * into ONE aggregate row per (trace, design, code) (aggregate = 1: seq the
 * first folded, last_seq the last, occurrences the count). The aggregate
 * row is written once, at the end of the segment, so a segment of 800,000
 * findings of one code costs `limit` + 1 rows. Runs inside the ingest's
 * transaction.
 */
import type { Finding } from '../model/findings.js';
import type { Db } from './db.js';

interface Fold {
  /** The stored aggregate row, when an earlier segment made one. */
  id: number | undefined;
  severity: string;
  seq: number;
  lastSeq: number;
  occurrences: number;
  message: string;
  details: string;
  event: string;
  context: string;
}

export function bigintJson(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? '0x' + v.toString(16) : v;
}

export class FindingWriter {
  private readonly stmts;

  constructor(db: Db) {
    this.stmts = {
      counts: db.prepare(
        `SELECT backend, code, sum(aggregate = 0) AS rows, max(CASE WHEN aggregate = 1 THEN id END) AS aggregate_id
           FROM findings WHERE trace_id = ? GROUP BY backend, code`,
      ),
      insert: db.prepare(
        `INSERT INTO findings (trace_id, segment, backend, code, severity, seq, message, details, event, context, aggregate, occurrences, last_seq)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      grow: db.prepare('UPDATE findings SET occurrences = occurrences + ?, last_seq = ? WHERE id = ?'),
    };
  }

  /** A writer for one segment of one trace. */
  begin(traceId: string, segment: number, limit: number): SegmentFindings {
    return new SegmentFindings(this.stmts, traceId, segment, limit);
  }
}

type Stmts = FindingWriter['stmts'];

export class SegmentFindings {
  /** Rows of their own per design and code, and the aggregate row's id. */
  private readonly rows = new Map<string, { rows: number; aggregateId: number | undefined }>();
  private readonly folds = new Map<string, Fold & { backend: string; code: string }>();
  private loaded = false;

  constructor(
    private readonly s: Stmts,
    private readonly traceId: string,
    private readonly segment: number,
    private readonly limit: number,
  ) {}

  private load(): void {
    this.loaded = true;
    for (const r of this.s.counts.all(this.traceId) as { backend: string; code: string; rows: number; aggregate_id: number | null }[]) {
      this.rows.set(`${r.backend}\u0000${r.code}`, { rows: r.rows, aggregateId: r.aggregate_id ?? undefined });
    }
  }

  /** `line`: the trace line of the event; `context`: the lines before it. */
  add(backend: string, fs: readonly Finding[], line: string, context: readonly string[]): void {
    if (!this.loaded) this.load();
    let ctx: string | undefined;
    for (const f of fs) {
      const key = `${backend}\u0000${f.code}`;
      let n = this.rows.get(key);
      if (!n) this.rows.set(key, (n = { rows: 0, aggregateId: undefined }));
      if (n.rows < this.limit) {
        n.rows++;
        ctx ??= JSON.stringify(context);
        this.s.insert.run(this.traceId, this.segment, backend, f.code, f.severity, f.seq, f.message, JSON.stringify(f.details, bigintJson), line, ctx, 0, 1, null);
        continue;
      }
      const fold = this.folds.get(key);
      if (fold) {
        fold.occurrences++;
        fold.lastSeq = f.seq;
        continue;
      }
      ctx ??= JSON.stringify(context);
      this.folds.set(key, {
        backend,
        code: f.code,
        id: n.aggregateId,
        severity: f.severity,
        seq: f.seq,
        lastSeq: f.seq,
        occurrences: 1,
        message: f.message,
        details: JSON.stringify(f.details, bigintJson),
        event: line,
        context: ctx,
      });
    }
  }

  /** Writes the folded findings: a new aggregate row, or the earlier one grown. */
  finish(): void {
    for (const f of this.folds.values()) {
      if (f.id !== undefined) this.s.grow.run(f.occurrences, f.lastSeq, f.id);
      else this.s.insert.run(this.traceId, this.segment, f.backend, f.code, f.severity, f.seq, f.message, f.details, f.event, f.context, 1, f.occurrences, f.lastSeq);
    }
    this.folds.clear();
  }
}
