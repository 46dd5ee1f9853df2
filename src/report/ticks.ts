/**
 * Axis ticks at round values: byte axes in 1-2-5 steps of binary units
 * (..., 100 MiB, 200 MiB, 512 MiB, 1 GiB, 2 GiB, 5 GiB, ...), labelled
 * exactly ("0", "512 MiB", "1 GiB", "1.5 GiB"); seq axes in decimal 1-2-5
 * steps ("0", "200,000", "400,000").
 */
import { thousands } from './size.js';

const UNIT_NAMES = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** Every byte step a tick may take, ascending: 1, 2, 5, ..., 200 of a unit, then half of the next (512 of this one). */
const BYTE_STEPS: number[] = (() => {
  const steps: number[] = [];
  for (let i = 0; i < UNIT_NAMES.length; i++) {
    const u = 1024 ** i;
    if (i > 0) steps.push(u / 2);
    for (const m of [1, 2, 5, 10, 20, 50, 100, 200]) steps.push(m * u);
  }
  return steps;
})();

export interface Axis {
  /** The top (or right end) of the scale: a whole number of steps. */
  top: number;
  step: number;
  ticks: number[];
}

/**
 * Ticks from 0 for values up to `max` bytes, about `target` intervals, with
 * `headroom` (a fraction) kept above `max` so a line drawn there has room for
 * its label.
 */
export function byteAxis(max: number, target = 5, headroom = 0.06): Axis {
  const want = Math.max(max, 1) * (1 + headroom);
  const step = BYTE_STEPS.find((s) => s * target >= want) ?? nextDecimal(want / target, 1024 ** (UNIT_NAMES.length - 1));
  const n = Math.max(1, Math.ceil(want / step));
  const ticks: number[] = [];
  for (let i = 0; i <= n; i++) ticks.push(i * step);
  return { top: n * step, step, ticks };
}

/** The smallest 1-2-5 multiple of `unit` (unit x 10^k x {1, 2, 5}) at least `v`. */
function nextDecimal(v: number, unit = 1): number {
  let p = unit;
  for (;;) {
    for (const m of [1, 2, 5]) if (m * p >= v) return m * p;
    p *= 10;
  }
}

/** A byte value as the largest unit that shows it exactly with at most one decimal: "512 MiB", "1.5 GiB", "1,200 MiB". */
export function byteTickLabel(bytes: number): string {
  if (bytes === 0) return '0';
  for (let i = UNIT_NAMES.length - 1; i >= 1; i--) {
    const u = 1024 ** i;
    if (bytes < u) continue;
    const tenths = (bytes * 10) / u;
    if (Number.isInteger(tenths)) return tenths % 10 === 0 ? `${thousands(tenths / 10)} ${UNIT_NAMES[i]}` : `${thousands(Math.floor(tenths / 10))}.${tenths % 10} ${UNIT_NAMES[i]}`;
  }
  return `${thousands(bytes)} B`;
}

/** Seq ticks: multiples of a decimal 1-2-5 step inside [lo, hi], about `target` of them. */
export function seqAxis(lo: number, hi: number, target = 7): Axis {
  const step = nextDecimal(Math.max(hi - lo, 1) / target);
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) ticks.push(t);
  return { top: hi, step, ticks };
}
