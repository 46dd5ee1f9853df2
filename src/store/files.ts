/**
 * The intake ledger (table `files`): the state every file taken ends in.
 * record() is an upsert on name and hash (or on name alone while the file
 * has no hash); recording a file's content replaces the hashless row of the
 * same name when that row says it could not be read whole yet (incomplete,
 * unreadable). The same file (name and content) taken again after it was
 * ingested stays `ingested`.
 */
import type { Db } from './db.js';
import { syncTransaction } from './transaction.js';

export const FILE_STATUSES = ['ingested', 'duplicate', 'waiting', 'quarantined', 'incomplete', 'unreadable', 'rejected'] as const;
export type FileStatus = (typeof FILE_STATUSES)[number];

export interface FileRecord {
  name: string;
  status: FileStatus;
  reason?: string;
  traceId?: string;
  segment?: number;
  hash?: string;
  size?: number;
  movedTo?: string;
}

export interface FileRow {
  name: string;
  status: FileStatus;
  reason: string | null;
  trace_id: string | null;
  segment: number | null;
  hash: string | null;
  size: number | null;
  moved_to: string | null;
  first_seen: number;
  updated_at: number;
}

/** States only a file that was read whole can be in (it has a hash). */
const READ_STATES = new Set<FileStatus>(['ingested', 'duplicate', 'waiting', 'quarantined']);

/** Kept fields: a record that does not know one (the daemon's move, after the ingest's record) keeps the stored value. */
const SET = `status = CASE WHEN files.status = 'ingested' AND excluded.status = 'duplicate' THEN 'ingested' ELSE excluded.status END,
  reason = CASE WHEN files.status = 'ingested' AND excluded.status = 'duplicate' THEN files.reason ELSE excluded.reason END,
  trace_id = coalesce(excluded.trace_id, files.trace_id), segment = coalesce(excluded.segment, files.segment),
  size = coalesce(excluded.size, files.size), moved_to = coalesce(excluded.moved_to, files.moved_to), updated_at = excluded.updated_at`;

export class FileLedger {
  private readonly withHash;
  private readonly withoutHash;
  private readonly dropHashless;
  private readonly newestHashed;

  constructor(private readonly db: Db) {
    const insert = `INSERT INTO files (name, status, reason, trace_id, segment, hash, size, moved_to, first_seen, updated_at)
      VALUES (@name, @status, @reason, @trace_id, @segment, @hash, @size, @moved_to, @now, @now)`;
    this.withHash = db.prepare(`${insert} ON CONFLICT (name, hash) WHERE hash IS NOT NULL DO UPDATE SET ${SET}`);
    this.withoutHash = db.prepare(`${insert} ON CONFLICT (name) WHERE hash IS NULL DO UPDATE SET ${SET}`);
    this.newestHashed = db.prepare('SELECT hash FROM files WHERE name = ? AND hash IS NOT NULL ORDER BY updated_at DESC, id DESC LIMIT 1');
    this.dropHashless = db.prepare(`DELETE FROM files WHERE name = ? AND hash IS NULL AND status IN ('incomplete', 'unreadable')`);
  }

  /** Inside an open transaction the statements join it; otherwise they run as one of their own. */
  record(r: FileRecord, now = Date.now()): void {
    const row = {
      name: r.name,
      status: r.status,
      reason: r.reason ?? null,
      trace_id: r.traceId ?? null,
      segment: r.segment ?? null,
      hash: r.hash ?? null,
      size: r.size ?? null,
      moved_to: r.movedTo ?? null,
      now,
    };
    syncTransaction(this.db, () => {
      // A state of a file that was read (the daemon's move after the ingest's record) without its hash: the newest read one of that name.
      const hash = r.hash ?? (READ_STATES.has(r.status) ? (this.newestHashed.get(r.name) as { hash: string } | undefined)?.hash : undefined);
      if (hash === undefined) {
        this.withoutHash.run(row);
        return;
      }
      this.dropHashless.run(r.name);
      this.withHash.run({ ...row, hash });
    });
  }
}

/** The ledger, newest first; `status` filters. */
export function listFiles(db: Db, opts: { status?: FileStatus; limit?: number } = {}): FileRow[] {
  return db
    .prepare(
      `SELECT name, status, reason, trace_id, segment, hash, size, moved_to, first_seen, updated_at FROM files
        WHERE @status IS NULL OR status = @status ORDER BY updated_at DESC, id DESC LIMIT @limit`,
    )
    .all({ status: opts.status ?? null, limit: opts.limit ?? -1 }) as FileRow[];
}

/** Files per state (every state listed, 0 when none). */
export function filesByStatus(db: Db): Record<FileStatus, number> {
  const out = Object.fromEntries(FILE_STATUSES.map((s) => [s, 0])) as Record<FileStatus, number>;
  for (const r of db.prepare('SELECT status, count(*) AS n FROM files GROUP BY status').all() as { status: FileStatus; n: number }[]) out[r.status] = r.n;
  return out;
}
