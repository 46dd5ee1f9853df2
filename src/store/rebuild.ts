/**
 * Replaying a stored trace again: from the state saved after the segment
 * before an event, through the segment's file (kept in processed/ or where
 * `ingest` read it), up to that event. Used by `state --at` and `diff`.
 *
 * A file replayed again must be the one ingested: it is opened O_NOFOLLOW,
 * must be a regular file, its sha256 must equal the stored content_hash
 * before anything is answered from it, and its header must name the stored
 * trace and segment; otherwise the question is refused (QueryError, exit 2).
 */
import { closeSync, constants, fstatSync, openSync, type Stats } from 'node:fs';
import type { TraceEvent } from '../model/events.js';
import { BACKENDS } from '../model/backends/index.js';
import { DifferentialReplay } from '../model/replay/differential.js';
import { restoreReplay } from '../model/state/snapshot.js';
import type { IommuDriver } from '../model/vfio/driver.js';
import { CAPTURED_DESIGN } from '../replay/designs.js';
import { hashFile } from '../trace/hash.js';
import { openSegment } from '../trace/reader.js';
import type { Db } from './db.js';
import { QueryError, requireTrace, segmentState, segmentsOf, type StoredSegment } from './queries.js';

/** What the store recorded of an ingested segment's file. */
interface StoredFile {
  path: string | null;
  content_hash: string;
}

function storedFile(db: Db, traceId: string, segment: number): StoredFile {
  const row = db.prepare(`SELECT path, content_hash FROM segments WHERE trace_id = ? AND segment = ? AND status = 'ingested'`).get(traceId, segment) as StoredFile | undefined;
  if (!row) throw new QueryError(`Segment ${segment} of trace ${traceId} is not ingested`);
  return row;
}

const cannot = ': cannot answer from it';

/** Opens the segment's file as ingested: no symlink, a regular file. Returns the fd and its stat. */
function openStored(traceId: string, segment: number, path: string | null): { fd: number; path: string; stat: Stats } {
  if (!path) throw new QueryError(`Segment ${segment} of trace ${traceId} must be replayed again, but its file was not recorded`);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new QueryError(`Segment ${segment} of trace ${traceId} must be replayed again, but its file is no longer at ${path}`);
    if (code === 'ELOOP') throw new QueryError(`${path} is a symbolic link now, not the file ingested${cannot}`);
    throw new QueryError(`${path} cannot be opened (${code ?? (e as Error).message})${cannot}`);
  }
  const stat = fstatSync(fd);
  if (!stat.isFile()) {
    closeSync(fd);
    throw new QueryError(`${path} is not a regular file now${cannot}`);
  }
  return { fd, path, stat };
}

const sameFile = (a: Stats, b: Stats) => a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;

/** The replay as it stood just after event `seq`, or at the end of the trace. */
export async function replayAt(db: Db, traceId: string, seq?: number): Promise<DifferentialReplay> {
  const t = requireTrace(db, traceId);
  const segs = segmentsOf(db, traceId);
  if (seq === undefined || seq >= t.last_seq) return restoreReplay(segmentState(db, traceId, t.last_segment)!);
  const idx = segs.findIndex((s) => s.last_seq !== null && seq <= s.last_seq);
  const seg = segs[idx]!;
  if (seg.first_seq !== null && seq < seg.first_seq && idx === 0) {
    throw new QueryError(`Trace ${traceId} starts at seq ${seg.first_seq}; there is no state at seq ${seq}`);
  }
  const prev = segs[idx - 1];
  const replay = prev ? restoreReplay(segmentState(db, traceId, prev.segment)!) : undefined;
  // Segment 0 starts afresh, through the designs the trace was ingested with.
  const drivers = new Map(t.backends.map((n) => [n, BACKENDS[n]!]));
  return replaySegments(db, traceId, [seg], replay, drivers, (e) => e.seq <= seq);
}

/**
 * Replays segments from their files; starts fresh from segment 0 with
 * `drivers` when no replay is given. `keep` says whether to apply an event;
 * the first refused event ends the replay. Each file is checked (above)
 * before its first event is applied.
 */
export async function replaySegments(
  db: Db,
  traceId: string,
  segs: StoredSegment[],
  replay: DifferentialReplay | undefined,
  drivers: ReadonlyMap<string, IommuDriver> | undefined,
  keep: (e: TraceEvent) => boolean = () => true,
  onEvent?: (e: TraceEvent, d: DifferentialReplay) => void,
): Promise<DifferentialReplay> {
  let d = replay;
  for (const s of segs) {
    const stored = storedFile(db, traceId, s.segment);
    const file = openStored(traceId, s.segment, stored.path);
    try {
      const now = await hashFile(file);
      if (now !== stored.content_hash) {
        throw new QueryError(`${file.path} changed since it was ingested (sha256 ${stored.content_hash} stored, ${now} now)${cannot}`);
      }
      const reader = openSegment(file, -1, file.path);
      const header = await reader.header();
      if (header.traceId !== traceId || header.segment !== s.segment) {
        throw new QueryError(`${file.path} is segment ${header.segment} of trace ${header.traceId}, not segment ${s.segment} of trace ${traceId}${cannot}`);
      }
      if (!d) {
        if (!drivers) throw new QueryError('No designs to replay through');
        d = new DifferentialReplay(drivers, CAPTURED_DESIGN, { keepOutcomes: true });
      }
      reader.parser.continueAfter(d.lastSeq);
      const err = d.beginSegment(header);
      if (err) throw new QueryError(err);
      let stopped = false;
      for await (const e of reader.events()) {
        if (!keep(e)) {
          stopped = true;
          break;
        }
        d.apply(e);
        onEvent?.(e, d);
      }
      // Written in place while it was read: what was replayed is not what was hashed.
      if (!sameFile(file.stat, fstatSync(file.fd))) throw new QueryError(`${file.path} changed while it was being replayed${cannot}`);
      if (stopped) return d;
    } finally {
      closeSync(file.fd);
    }
  }
  if (!d) throw new QueryError(`Trace ${traceId} has no ingested segment`);
  return d;
}
