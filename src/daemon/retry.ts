/**
 * Store faults, handled the one way: a transient one (busy, locked, disk
 * full, an I/O error that may clear) is retried with backoff, 100 ms
 * doubling to 30 s, logged each time with the attempt number; after
 * MAX_ATTEMPTS failed attempts, or at once for a fatal one, the caller's
 * `fatal` is told (the daemon logs one line and exits 1).
 */
import { StoreFault, storeFault } from '../store/store-error.js';

export const FIRST_BACKOFF_MS = 100;
export const MAX_BACKOFF_MS = 30_000;
export const MAX_ATTEMPTS = 10;

export function backoffMs(attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (attempt - 1));
}

export interface RetryHooks {
  /** A transient fault of attempt `attempt`; the next attempt comes after `delayMs`. */
  retrying(file: string, fault: StoreFault, attempt: number, delayMs: number): void;
  /** Resolves after ms, or earlier when the process is stopping (then `stopping()` is true). */
  sleep(ms: number): Promise<void>;
  stopping(): boolean;
}

export type Retried<T> = { ok: true; value: T } | { ok: false; fault: StoreFault; attempts: number } | { ok: false; stopped: true };

/**
 * Runs `fn` until it succeeds, a fault is fatal, attempts run out, or the
 * process stops. Exceptions that are not store faults are thrown as they are.
 */
export async function withRetry<T>(file: string, hooks: RetryHooks, fn: () => T | Promise<T>): Promise<Retried<T>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return { ok: true, value: await fn() };
    } catch (e) {
      const fault = storeFault(e);
      if (!fault) throw e;
      if (fault.kind === 'fatal') return { ok: false, fault, attempts: attempt };
      if (attempt >= MAX_ATTEMPTS) {
        const msg = `${fault.message} (still failing after ${attempt} attempts)`;
        return { ok: false, fault: new StoreFault('fatal', fault.code, msg, { cause: fault }), attempts: attempt };
      }
      const delay = backoffMs(attempt);
      hooks.retrying(file, fault, attempt, delay);
      await hooks.sleep(delay);
      if (hooks.stopping()) return { ok: false, stopped: true };
    }
  }
}
