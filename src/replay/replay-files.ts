/**
 * Replays segment files through one or more backend designs. Files are
 * taken in the order given; segments of one trace continue one another.
 * This is the I/O edge around the pure model.
 */
import type { TraceHeader } from '../model/events.js';
import type { Finding } from '../model/findings.js';
import { DifferentialReplay } from '../model/replay/differential.js';
import type { Replayer } from '../model/replay/replayer.js';
import type { IommuDriver } from '../model/vfio/driver.js';
import { openSegment } from '../trace/reader.js';
import { TraceError } from '../trace/trace-error.js';
import { CAPTURED_DESIGN } from './designs.js';

export interface TraceReplay {
  traceId: string;
  files: string[];
  replayers: Map<string, Replayer>;
  /** The guest's memory from the headers (the last segment that gave it), bytes. */
  guestMemory?: bigint;
}

/** The designs to replay a trace through, chosen once its first header is read. */
export type DriverChoice = ReadonlyMap<string, IommuDriver> | ((header: TraceHeader) => ReadonlyMap<string, IommuDriver>);

/** `kernel`: the release to emulate, overriding the headers' (--kernel). */
export async function replayFiles(files: string[], drivers: DriverChoice, opts: { keepOutcomes?: boolean; kernel?: string } = {}): Promise<TraceReplay[]> {
  const traces = new Map<string, { t: TraceReplay; diff: DifferentialReplay }>();
  for (const file of files) {
    const reader = openSegment(file);
    const header = await reader.header();
    let entry = traces.get(header.traceId);
    if (!entry) {
      const chosen = typeof drivers === 'function' ? drivers(header) : drivers;
      const diff = new DifferentialReplay(chosen, CAPTURED_DESIGN, opts);
      entry = { t: { traceId: header.traceId, files: [], replayers: diff.replayers }, diff };
      traces.set(header.traceId, entry);
    }
    reader.parser.continueAfter(entry.diff.lastSeq);
    const err = entry.diff.beginSegment(header);
    if (err) throw new TraceError(file, 1, 'segment', err);
    entry.t.files.push(file);
    if (header.guestMemory !== undefined) entry.t.guestMemory = header.guestMemory;
    for await (const batch of reader.batches()) for (const e of batch) entry.diff.apply(e);
  }
  return [...traces.values()].map((x) => x.t);
}

export function hasErrors(findings: readonly Finding[]): boolean {
  return findings.some((f) => f.severity === 'error');
}
