/**
 * When a file in the drop folder is complete enough to take: the watcher
 * only reports names; one sweep timer (for all files at once, not one per
 * file) lstats each pending name and hands it on once its size, mtime and
 * inode have stayed the same for `stableMs`. Files parked after an
 * `incomplete` or `unreadable` outcome are looked at by the same sweep
 * and become pending again as soon as anything about them changes (size,
 * mtime, ctime, mode, owner: a chmod counts).
 */
import { lstatSync, type Stats } from 'node:fs';

interface Pending {
  sig: string | undefined;
  since: number;
}

export interface SweepHooks {
  /** The file has been the same for stableMs. */
  stable(path: string): void;
  /** lstat failed other than ENOENT (logged by the caller; the name is dropped). */
  error(path: string, e: NodeJS.ErrnoException): void;
}

const shortSig = (st: Stats): string => `${st.size}:${st.mtimeMs}:${st.ino}`;
const fullSig = (st: Stats): string => `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.mode}:${st.uid}:${st.gid}:${st.ino}`;

export class StabilitySweep {
  private readonly pending = new Map<string, Pending>();
  private readonly parked = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** How often the sweep runs: a quarter of stableMs, between 10 and 250 ms. */
  readonly periodMs: number;

  constructor(
    private readonly stableMs: number,
    private readonly hooks: SweepHooks,
  ) {
    this.periodMs = Math.min(250, Math.max(10, Math.floor(stableMs / 4)));
  }

  /** A name the watcher reported (added or changed): its clock starts again. */
  note(path: string): void {
    if (this.stopped) return;
    this.parked.delete(path);
    this.pending.set(path, { sig: undefined, since: Date.now() });
    this.arm();
  }

  /** Not taken now: taken again once it changes (any of size, mtime, ctime, mode, owner). */
  park(path: string): void {
    if (this.stopped) return;
    this.pending.delete(path);
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'ENOENT') this.hooks.error(path, err);
      return;
    }
    this.parked.set(path, fullSig(st));
    this.arm();
  }

  forget(path: string): void {
    this.pending.delete(path);
    this.parked.delete(path);
  }

  /** Names waiting to become stable, and names parked. */
  counts(): { pending: number; parked: number } {
    return { pending: this.pending.size, parked: this.parked.size };
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.pending.clear();
    this.parked.clear();
  }

  private arm(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.sweep(), this.periodMs);
  }

  private stat(path: string): Stats | undefined {
    try {
      return lstatSync(path);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'ENOENT') this.hooks.error(path, err);
      return undefined;
    }
  }

  /** One pass over every pending and parked name. */
  sweep(now = Date.now()): void {
    const ready: string[] = [];
    for (const [path, p] of this.pending) {
      const st = this.stat(path);
      if (!st) {
        this.pending.delete(path);
        continue;
      }
      const sig = shortSig(st);
      if (sig !== p.sig) {
        p.sig = sig;
        p.since = now;
      } else if (now - p.since >= this.stableMs) {
        this.pending.delete(path);
        ready.push(path);
      }
    }
    for (const [path, sig] of this.parked) {
      const st = this.stat(path);
      if (!st) {
        this.parked.delete(path);
        continue;
      }
      if (fullSig(st) !== sig) {
        this.parked.delete(path);
        this.pending.set(path, { sig: shortSig(st), since: now });
      }
    }
    if (this.pending.size === 0 && this.parked.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    for (const path of ready) this.hooks.stable(path);
  }
}
