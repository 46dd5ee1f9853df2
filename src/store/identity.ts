/**
 * Whether a segment's header belongs to the trace it names: segment N > 0
 * continues a trace only when its host, page size and topology (when it
 * gives one) equal those of segment 0. The topology is compared as
 * canonical JSON (keys sorted, bigints as "0x...").
 */
import type { TraceHeader } from '../model/events.js';

export interface TraceIdentity {
  trace_id: string;
  page_size: number;
  host: string | null;
  topology: string | null;
  /** 0: stored before schema 5, host and topology unknown (only page_size is compared). */
  identity_recorded: number;
}

export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (typeof v === 'bigint') return '0x' + v.toString(16);
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(o)
        .sort()
        .filter((k) => o[k] !== undefined)
        .map((k) => [k, sortKeys(o[k])]),
    );
  }
  return v;
}

export function topologyOf(h: TraceHeader): string | null {
  return h.topology ? canonicalJson(h.topology) : null;
}

const hostName = (h: string | null | undefined) => (h === null || h === undefined ? '(none named)' : h);

/** The reason the header does not continue `trace`, or undefined when it does. */
export function identityMismatch(name: string, h: TraceHeader, trace: TraceIdentity): string | undefined {
  const at = `${name}:1: field`;
  if (trace.identity_recorded === 1 && (h.host ?? null) !== trace.host) {
    return `${at} host: trace ${h.traceId} comes from host ${hostName(trace.host)}, this segment from host ${hostName(h.host)}`;
  }
  if (h.pageSize !== trace.page_size) return `${at} page_size: trace ${h.traceId} has page size ${trace.page_size}, this segment ${h.pageSize}`;
  if (trace.identity_recorded === 1 && h.topology) {
    const topo = topologyOf(h);
    if (topo !== trace.topology) {
      return `${at} topology: trace ${h.traceId} ${trace.topology === null ? 'has no topology (segment 0 gave none)' : 'has another topology (from segment 0)'}; a later segment may omit it but not change it`;
    }
  }
  return undefined;
}

/** For a segment of a trace already ingested: where the trace and this segment come from, when they name hosts. */
export function hostsNote(h: TraceHeader, trace: TraceIdentity): string {
  if (trace.identity_recorded !== 1 || (trace.host === null && h.host === undefined)) return '';
  return ` (the trace from host ${hostName(trace.host)}, this segment from host ${hostName(h.host)})`;
}
