/**
 * Findings as the report shows them: one row per design, code, severity and
 * cause, with how many there were and the first and last seq. The cause is
 * the finding's `details.cause` when it names one, else its message with the
 * numbers, addresses and device UUIDs taken out, so "Pin charged 32 pages
 * again ... iova 0x10020000" and "... 1 pages again ... 0x100e0000" are one.
 */

export interface FindingGroup {
  backend: string;
  code: string;
  severity: string;
  /** details.cause, or the normalised message. */
  cause: string;
  count: number;
  first_seq: number;
  last_seq: number;
  /** The message of the first finding of the group. */
  message: string;
}

const UUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;
/** A 0x value or a decimal number, in one pass so one replacement is not taken apart by the next. */
const NUMBER = /\b0x[0-9a-f]+\b|\d+(?:\.\d+)?/gi;
const numberMark = (s: string) => (s.charCodeAt(1) === 120 || s.charCodeAt(1) === 88 ? '0x#' : '#');

/**
 * The message with its particulars replaced: UUIDs by <uuid>, 0x values by
 * 0x#, numbers by #. Called once per finding when the store groups them
 * (millions of times for a long churn trace), so the UUID pass only runs on
 * messages with a '-'.
 */
export function normaliseMessage(message: string): string {
  return (message.indexOf('-') >= 0 ? message.replace(UUID, '<uuid>') : message).replace(NUMBER, numberMark);
}

/** The cause a finding is grouped by: details.cause when it is there, else the normalised message. */
export function causeOf(message: string, details: Record<string, unknown> | null | undefined): string {
  const c = details?.cause;
  if (c !== undefined && c !== null && c !== '') return typeof c === 'string' ? c : JSON.stringify(c);
  return normaliseMessage(message);
}

const SEVERITY_RANK: Record<string, number> = { error: 0, warning: 1, info: 2 };

/** Groups in the order shown: by design (as `designOrder` lists them), severity, then first seq. */
export function sortGroups(groups: FindingGroup[], designOrder: readonly string[]): FindingGroup[] {
  const rank = (b: string) => {
    const i = designOrder.indexOf(b);
    return i === -1 ? designOrder.length : i;
  };
  return groups.sort(
    (a, b) =>
      rank(a.backend) - rank(b.backend) ||
      (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3) ||
      a.first_seq - b.first_seq ||
      (a.code < b.code ? -1 : a.code > b.code ? 1 : 0),
  );
}

/** Group finding rows held in memory (what findingGroups() in the store does in SQL). */
export function groupFindings(
  rows: Iterable<{ backend: string; code: string; severity: string; seq: number; message: string; details: Record<string, unknown> }>,
  designOrder: readonly string[] = [],
): FindingGroup[] {
  const m = new Map<string, FindingGroup>();
  for (const f of rows) {
    const cause = causeOf(f.message, f.details);
    const key = `${f.backend}\u0000${f.code}\u0000${f.severity}\u0000${cause}`;
    const g = m.get(key);
    if (!g) m.set(key, { backend: f.backend, code: f.code, severity: f.severity, cause, count: 1, first_seq: f.seq, last_seq: f.seq, message: f.message });
    else {
      g.count++;
      if (f.seq < g.first_seq) {
        g.first_seq = f.seq;
        g.message = f.message;
      }
      if (f.seq > g.last_seq) g.last_seq = f.seq;
    }
  }
  return sortGroups([...m.values()], designOrder);
}
