/**
 * WAL upkeep: `PRAGMA wal_checkpoint(TRUNCATE)` when the daemon goes idle
 * after an ingest and every 60 s, so a WAL that grew while a long reader
 * held it goes back to zero bytes once the reader lets go. The busy
 * timeout is set to 0 around it (TRUNCATE would otherwise wait up to 5 s
 * for readers, and signals are answered within a second); when a reader
 * still holds the WAL the checkpoint is incomplete, which is logged.
 */
import type { Db } from '../store/db.js';
import { storeFault } from '../store/store-error.js';
import type { RunnerLog } from './runner.js';

export const CHECKPOINT_EVERY_MS = 60_000;

/** What SQLite returns for the checkpoint: busy = 1 when it could not finish. */
interface CheckpointRow {
  busy: number;
  log: number;
  checkpointed: number;
}

export type CheckpointResult = { kind: 'done'; frames: number } | { kind: 'busy'; frames: number; checkpointed: number } | { kind: 'failed'; code: string; message: string };

/**
 * The daemon's busy timeout: better-sqlite3 waits for a lock synchronously,
 * so the daemon waits at most this long at a time (not db.ts's 5 s) and
 * retries a busy store with backoff instead, answering signals meanwhile.
 */
export const BUSY_TIMEOUT_MS = 500;

export function checkpoint(db: Db, log: RunnerLog, why: 'idle' | 'periodic'): CheckpointResult {
  if (db.inTransaction) return { kind: 'busy', frames: -1, checkpointed: -1 };
  let row: CheckpointRow;
  try {
    db.pragma('busy_timeout = 0');
    row = (db.pragma('wal_checkpoint(TRUNCATE)') as CheckpointRow[])[0]!;
  } catch (e) {
    const f = storeFault(e);
    const code = f?.code ?? String((e as { code?: unknown }).code ?? 'unknown');
    const message = f?.message ?? (e instanceof Error ? e.message : String(e));
    log.warn({ why, code, err: message }, 'checkpoint failed');
    return { kind: 'failed', code, message };
  } finally {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  }
  if (row.busy !== 0) {
    log.warn({ why, wal_frames: row.log, checkpointed: row.checkpointed }, 'checkpoint incomplete: a reader holds the WAL; it is truncated at a later checkpoint');
    return { kind: 'busy', frames: row.log, checkpointed: row.checkpointed };
  }
  return { kind: 'done', frames: row.log };
}
