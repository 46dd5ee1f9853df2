/**
 * What one trace may cost the store, settable per daemon or `ingest`
 * (--max-file-size, --max-events, --max-containers, --max-mappings,
 * --max-findings-per-code). A segment over a size limit is quarantined
 * with a reason naming the limit and its option; nothing of it is stored.
 * Findings over maxFindingsPerCode are not refused: they are folded into
 * one row per trace, design and code (src/store/finding-writer.ts).
 */
import type { DifferentialReplay } from '../model/replay/differential.js';

export interface IngestLimits {
  /** Uncompressed bytes of one segment file (the reader stops past it). */
  maxFileBytes: number;
  /** Events in one segment. */
  maxEventsPerSegment: number;
  /** Live VFIO containers in a trace, under any design. */
  maxContainers: number;
  /** vfio_dma mappings held by a trace's containers together, under any design. */
  maxMappings: number;
  /** Findings of one design and code kept as rows of their own, per trace; the rest are folded into one. */
  maxFindingsPerCode: number;
}

export const DEFAULT_LIMITS: IngestLimits = {
  maxFileBytes: 8 * 1024 ** 3,
  maxEventsPerSegment: 50_000_000,
  maxContainers: 4096,
  maxMappings: 1_000_000,
  maxFindingsPerCode: 1000,
};

/** The option that sets each limit, named in reasons. */
export const LIMIT_OPTIONS: Record<keyof IngestLimits, string> = {
  maxFileBytes: '--max-file-size',
  maxEventsPerSegment: '--max-events',
  maxContainers: '--max-containers',
  maxMappings: '--max-mappings',
  maxFindingsPerCode: '--max-findings-per-code',
};

/** Mappings are counted every this many events (and at the end of the segment): a count walks every container. */
export const MAPPING_CHECK_EVERY = 1024;

export function limitsOf(given: Partial<IngestLimits> | undefined): IngestLimits {
  return { ...DEFAULT_LIMITS, ...given };
}

/** The largest number of live containers under any of the replay's designs. */
export function liveContainers(replay: DifferentialReplay): number {
  let n = 0;
  for (const r of replay.replayers.values()) n = Math.max(n, r.vfio?.containers.size ?? 0);
  return n;
}

/** The largest number of vfio_dma mappings held under any of the replay's designs. */
export function heldMappings(replay: DifferentialReplay): number {
  let n = 0;
  for (const r of replay.replayers.values()) {
    let m = 0;
    for (const b of r.vfio?.backends() ?? []) m += b.mappings();
    n = Math.max(n, m);
  }
  return n;
}

/**
 * The reason a segment is refused because the trace went over a limit
 * at event `seq`, or undefined while it is within them.
 */
export function overLimit(name: string, traceId: string, seq: number, replay: DifferentialReplay, limits: IngestLimits, countMappings: boolean): string | undefined {
  const c = liveContainers(replay);
  if (c > limits.maxContainers) return `${name}: trace ${traceId} holds ${c} VFIO containers at seq ${seq}, more than the limit of ${limits.maxContainers} (${LIMIT_OPTIONS.maxContainers})`;
  if (!countMappings) return undefined;
  const m = heldMappings(replay);
  if (m > limits.maxMappings) return `${name}: trace ${traceId} holds ${m} vfio_dma mappings at seq ${seq}, more than the limit of ${limits.maxMappings} (${LIMIT_OPTIONS.maxMappings})`;
  return undefined;
}

export function tooManyEvents(name: string, limits: IngestLimits): string {
  return `${name}: more than ${limits.maxEventsPerSegment} events in one segment, the limit (${LIMIT_OPTIONS.maxEventsPerSegment})`;
}

/** saveReplay() past V8's longest string: the state cannot be stored. */
export function stateTooLarge(name: string, traceId: string, limits: IngestLimits): string {
  return `${name}: the replay state of trace ${traceId} is larger than the longest string this runtime can build (about 512 MiB), so it cannot be stored; ${LIMIT_OPTIONS.maxContainers} (${limits.maxContainers}) and ${LIMIT_OPTIONS.maxMappings} (${limits.maxMappings}) bound it`;
}

/** Is this the RangeError V8 throws when a string would exceed its maximum length? */
export function isStringTooLong(e: unknown): boolean {
  return e instanceof RangeError && /Invalid string length/.test(e.message);
}
