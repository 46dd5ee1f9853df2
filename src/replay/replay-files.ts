/**
 * Replays segment files through one or more backend designs. Files are
 * taken in the order given; segments of one trace continue one another.
 * This is the I/O edge around the pure Replayer.
 */
import type { Finding } from '../model/findings.js';
import { Replayer } from '../model/replay/replayer.js';
import type { IommuDriver } from '../model/vfio/driver.js';
import { openSegment } from '../trace/reader.js';
import { TraceError } from '../trace/trace-error.js';

export interface TraceReplay {
  traceId: string;
  files: string[];
  replayers: Map<string, Replayer>;
}

export async function replayFiles(
  files: string[],
  drivers: Map<string, IommuDriver>,
  opts: { keepOutcomes?: boolean } = {},
): Promise<TraceReplay[]> {
  const traces = new Map<string, TraceReplay>();
  for (const file of files) {
    const reader = openSegment(file);
    const header = await reader.header();
    let t = traces.get(header.traceId);
    if (!t) {
      t = { traceId: header.traceId, files: [], replayers: new Map() };
      for (const [name, d] of drivers) t.replayers.set(name, new Replayer(d, opts));
      traces.set(header.traceId, t);
    }
    const replayers = [...t.replayers.values()];
    reader.parser.continueAfter(replayers[0]!.lastSeq);
    for (const r of replayers) {
      const err = r.beginSegment(header);
      if (err) throw new TraceError(file, 1, 'segment', err);
    }
    t.files.push(file);
    for await (const e of reader.events()) {
      for (const r of replayers) r.apply(e);
    }
  }
  return [...traces.values()];
}

export function hasErrors(findings: readonly Finding[]): boolean {
  return findings.some((f) => f.severity === 'error');
}
