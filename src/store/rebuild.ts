/**
 * Replaying a stored trace again: from the state saved after the segment
 * before an event, through the segment's file (kept in processed/ or where
 * `ingest` read it), up to that event. Used by `state --at` and `diff`.
 */
import { existsSync } from 'node:fs';
import type { TraceEvent } from '../model/events.js';
import { BACKENDS } from '../model/backends/index.js';
import { DifferentialReplay } from '../model/replay/differential.js';
import { restoreReplay } from '../model/state/snapshot.js';
import type { IommuDriver } from '../model/vfio/driver.js';
import { CAPTURED_DESIGN } from '../replay/designs.js';
import { openSegment } from '../trace/reader.js';
import type { Db } from './db.js';
import { QueryError, requireTrace, segmentState, segmentsOf, type StoredSegment } from './queries.js';

function needFile(traceId: string, s: StoredSegment): string {
  if (!s.path || !existsSync(s.path)) {
    throw new QueryError(`Segment ${s.segment} of trace ${traceId} must be replayed again, but its file is no longer at ${s.path ?? '(not recorded)'}`);
  }
  return s.path;
}

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
 * the first refused event ends the replay.
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
    const reader = openSegment(needFile(traceId, s));
    const header = await reader.header();
    if (!d) {
      if (!drivers) throw new QueryError('No designs to replay through');
      d = new DifferentialReplay(drivers, CAPTURED_DESIGN, { keepOutcomes: true });
    }
    reader.parser.continueAfter(d.lastSeq);
    const err = d.beginSegment(header);
    if (err) throw new QueryError(err);
    for await (const e of reader.events()) {
      if (!keep(e)) return d;
      d.apply(e);
      onEvent?.(e, d);
    }
  }
  if (!d) throw new QueryError(`Trace ${traceId} has no ingested segment`);
  return d;
}
