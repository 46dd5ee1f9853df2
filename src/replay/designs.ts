/**
 * Which designs a trace is replayed through: named ones, `all`, or `auto`
 * (every design when the trace has mediated groups, where they differ,
 * otherwise upstream), and the design real captures come from.
 */
import { BACKENDS, BACKEND_NAMES } from '../model/backends/index.js';
import type { TraceHeader } from '../model/events.js';
import type { IommuDriver } from '../model/vfio/driver.js';

/** The design of the kernels captures come from: observed results are held against it. */
export const CAPTURED_DESIGN = 'upstream';

/**
 * Designs in the order they are shown: the captured design first (its
 * numbers are the headline and the exit status), then the comparisons in
 * the order the model lists them.
 */
export function orderDesigns(names: readonly string[]): string[] {
  const rank = (n: string) => (n === CAPTURED_DESIGN ? -1 : BACKEND_NAMES.indexOf(n) === -1 ? BACKEND_NAMES.length : BACKEND_NAMES.indexOf(n));
  return [...names].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The designs whose results decide the exit status and the headline: the
 * captured design when it was replayed (the others are comparisons), else
 * every design asked for.
 */
export function decidingDesigns(names: readonly string[]): string[] {
  return names.includes(CAPTURED_DESIGN) ? [CAPTURED_DESIGN] : orderDesigns(names);
}

export type BackendSpec = string[] | 'auto';

export class UnknownBackendError extends Error {
  override name = 'UnknownBackendError';
}

export function parseBackendSpec(spec: string): BackendSpec {
  if (spec === 'auto') return 'auto';
  const names = spec === 'all' ? BACKEND_NAMES : spec.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!BACKENDS[n]) throw new UnknownBackendError(`Unknown backend ${JSON.stringify(n)}; known: ${BACKEND_NAMES.join(', ')}, all, auto`);
  }
  if (names.length === 0) throw new UnknownBackendError('No backend named');
  return names;
}

export function driversFor(spec: BackendSpec, header: TraceHeader): Map<string, IommuDriver> {
  const names = spec !== 'auto' ? spec : header.topology?.groups.some((g) => g.kind === 'mdev') ? BACKEND_NAMES : [CAPTURED_DESIGN];
  return new Map(names.map((n) => [n, BACKENDS[n]!]));
}
