/**
 * A step series (a process's locked_vm, one point where it changes) cut into
 * a fixed number of columns, one per pixel of a chart or character of a
 * sparkline: for each column the lowest and highest value the series takes
 * over the column's seq range (the value it enters with included) and the
 * value it leaves with. Built one point at a time, so a timeline of millions
 * of points is never held as an array; the result's size depends on the
 * column count only.
 */

export interface StepColumns {
  /** Column c covers seq [x0 + c * span / columns, x0 + (c + 1) * span / columns), span = x1 - x0 + 1. */
  x0: number;
  x1: number;
  columns: number;
  /** Per column; NaN before the series' first point. */
  min: Float64Array;
  max: Float64Array;
  /** The value at the end of the column. */
  last: Float64Array;
  /** The column of the first point, -1 when the series has none. */
  startColumn: number;
  /** The value of the first point (NaN when none). */
  firstValue: number;
  /** Points taken, and the extremes over all of them. */
  points: number;
  peak: number;
  lowest: number;
}

/** The column of `seq` in [x0, x1] cut into `columns`; points outside are clamped to the ends. */
export function columnOf(seq: number, x0: number, x1: number, columns: number): number {
  const span = x1 - x0 + 1;
  const c = Math.floor(((seq - x0) * columns) / span);
  return c < 0 ? 0 : c >= columns ? columns - 1 : c;
}

export class StepDownsampler {
  private readonly min: Float64Array;
  private readonly max: Float64Array;
  private readonly last: Float64Array;
  /** The column the last point fell in; -1 before the first. */
  private col = -1;
  private value = NaN;
  private startColumn = -1;
  private firstValue = NaN;
  private points = 0;
  private peak = -Infinity;
  private lowest = Infinity;

  constructor(
    readonly x0: number,
    readonly x1: number,
    readonly columns: number,
  ) {
    if (!(columns >= 1) || !Number.isInteger(columns)) throw new RangeError(`columns must be a positive integer, not ${columns}`);
    if (!(x1 >= x0)) throw new RangeError(`empty seq range ${x0}..${x1}`);
    this.min = new Float64Array(columns).fill(NaN);
    this.max = new Float64Array(columns).fill(NaN);
    this.last = new Float64Array(columns).fill(NaN);
  }

  /** Columns after the current one up to (not including) `to` hold the current value throughout. */
  private carry(to: number): void {
    for (let c = this.col + 1; c < to; c++) {
      this.min[c] = this.value;
      this.max[c] = this.value;
      this.last[c] = this.value;
    }
  }

  /** The next point, seq not decreasing. */
  add(seq: number, v: number): void {
    this.addAggregate(columnOf(seq, this.x0, this.x1, this.columns), v, v, v, 1, v);
  }

  /**
   * Points of one column at once (columns not decreasing): their lowest,
   * highest and last value, how many, and the value of the first of them
   * (only read when they are the series' first points). What a GROUP BY
   * column in SQL gives; the result is the same as adding them one by one.
   */
  addAggregate(c: number, lo: number, hi: number, last: number, count: number, first: number): void {
    if (count < 1) return;
    if (this.col === -1) {
      this.startColumn = c;
      this.firstValue = first;
      this.min[c] = lo;
      this.max[c] = hi;
    } else if (c !== this.col) {
      this.carry(c);
      // The column starts with the value carried into it.
      this.min[c] = this.value < lo ? this.value : lo;
      this.max[c] = this.value > hi ? this.value : hi;
    } else {
      if (lo < this.min[c]!) this.min[c] = lo;
      if (hi > this.max[c]!) this.max[c] = hi;
    }
    this.last[c] = last;
    this.col = c;
    this.value = last;
    this.points += count;
    if (hi > this.peak) this.peak = hi;
    if (lo < this.lowest) this.lowest = lo;
  }

  /** The columns; the series holds its last value to the end of the range. */
  finish(): StepColumns {
    if (this.col !== -1) {
      this.carry(this.columns);
      this.col = this.columns - 1;
    }
    return {
      x0: this.x0,
      x1: this.x1,
      columns: this.columns,
      min: this.min,
      max: this.max,
      last: this.last,
      startColumn: this.startColumn,
      firstValue: this.firstValue,
      points: this.points,
      peak: this.points ? this.peak : NaN,
      lowest: this.points ? this.lowest : NaN,
    };
  }
}

/** Downsample an iterable of [seq, value] points (seq not decreasing). */
export function downsampleSteps(points: Iterable<readonly [number, number]>, x0: number, x1: number, columns: number): StepColumns {
  const d = new StepDownsampler(x0, x1, columns);
  for (const p of points) d.add(p[0], p[1]);
  return d.finish();
}

/** The seq range of a set of timelines, by loops (no spread of millions of arguments); null when all are empty. */
export function seqRangeOf(timelines: Iterable<readonly (readonly [number, number])[]>): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const t of timelines) {
    if (t.length === 0) continue;
    // Timelines are ordered by seq.
    if (t[0]![0] < lo) lo = t[0]![0];
    if (t[t.length - 1]![0] > hi) hi = t[t.length - 1]![0];
  }
  return lo === Infinity ? null : [lo, hi];
}
