/**
 * Takes files one at a time through the Ingestor, in arrival order. Each
 * file is opened here (src/daemon/safe-open.ts: regular files only), its fd
 * handed to the Ingestor and closed here. A segment that arrives before its
 * predecessor waits; several files may wait for the same segment, and all
 * are kept: when the predecessor lands the first is ingested and the next
 * ones are taken after it (a duplicate, or quarantined as already
 * ingested). A successor is released whatever happens to its
 * predecessor's move. With a drop folder, a finished file moves to
 * processed/ (ingested, or a duplicate of one), a bad one to quarantine/
 * with a .reason.txt beside it, a non-regular one (rejected) to
 * quarantine/ too when it can be moved (the link or node itself); a
 * waiting, incomplete or unreadable one stays where it is. Every file ends
 * in one state of the ledger (`files`). Store faults: src/daemon/retry.ts.
 */
import { closeSync, renameSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { FileLedger, FileRecord, FileStatus } from '../store/files.js';
import type { IngestResult, IngestStatus, Ingestor } from '../store/ingest.js';
import type { StoreFault } from '../store/store-error.js';
import { type DropFolder, freeName, moveInto, quarantineFile } from './folders.js';
import { type RetryHooks, withRetry } from './retry.js';
import { openRegular } from './safe-open.js';

export type { DropFolder };

/** What became of one file: the Ingestor's result, or a file that was never read. */
export type TakeResult = Omit<IngestResult, 'status'> & { status: IngestStatus | 'rejected' | 'unreadable'; movedTo?: string };

/** pino's shape (the CLI passes its own). */
export interface RunnerLog {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export interface RunnerOptions {
  ingestor: Ingestor;
  ledger: FileLedger;
  log: RunnerLog;
  /** Every file's outcome, once, after its move. */
  onResult: (r: TakeResult) => void;
  /** A fatal store fault (or a transient one that did not clear): nothing more is taken. */
  onFatal: (file: string, fault: StoreFault) => void;
  /** The drop folder; without it (`pinledger ingest`) files are not moved. */
  folder?: DropFolder;
  /** incomplete / unreadable: look at it again when it changes. */
  park?: (path: string) => void;
  /** changed while it was read: take it again once it is stable. */
  retake?: (path: string) => void;
}

export class IngestRunner {
  /** Files waiting for a predecessor, by trace and segment, in arrival order. */
  private readonly waiting = new Map<string, Map<number, string[]>>();
  private chain: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private stopped = false;
  private wake: (() => void)[] = [];
  private readonly retry: RetryHooks;

  constructor(private readonly o: RunnerOptions) {
    this.retry = {
      retrying: (file, fault, attempt, delayMs) =>
        o.log.warn({ file: basename(file), code: fault.code, attempt, retry_in_ms: delayMs, err: fault.message }, 'store fault: retrying'),
      sleep: (ms) =>
        new Promise<void>((res) => {
          const done = () => {
            clearTimeout(t);
            this.wake = this.wake.filter((w) => w !== done);
            res();
          };
          const t = setTimeout(done, ms);
          this.wake.push(done);
        }),
      stopping: () => this.stopped,
    };
  }

  /** Queues a file; files are taken one after another. */
  submit(file: string): Promise<void> {
    this.queued++;
    const next = this.chain.then(() => this.take(file)).finally(() => this.queued--);
    this.chain = next.catch((e: unknown) => this.o.log.error({ file: basename(file), err: e instanceof Error ? e.message : String(e) }, 'internal error taking the file'));
    return next;
  }

  /** No further file is taken; the one in progress finishes or rolls back; a backoff wait ends now. */
  stop(): void {
    this.stopped = true;
    for (const w of this.wake.splice(0)) w();
  }

  /** Nothing queued or in progress. */
  isIdle(): boolean {
    return this.queued === 0;
  }

  /** Resolves when everything queued so far is done. */
  idle(): Promise<unknown> {
    return this.chain;
  }

  /** Files still waiting for a predecessor. */
  pending(): { file: string; traceId: string; segment: number }[] {
    const out: { file: string; traceId: string; segment: number }[] = [];
    for (const [traceId, m] of this.waiting) for (const [segment, files] of m) for (const file of files) out.push({ file, traceId, segment });
    return out;
  }

  private async take(file: string): Promise<void> {
    const todo = [file];
    while (todo.length > 0 && !this.stopped) {
      const f = todo.shift()!;
      this.unwait(f);
      const r = await this.takeOne(f);
      // Released whatever became of the file's move: the chain is never lost.
      if (r?.status === 'ingested' && r.traceId !== undefined && r.segment !== undefined) todo.push(...this.release(r.traceId, r.segment + 1));
    }
  }

  /** The files waiting for `segment` of the trace, taken off the list. */
  private release(traceId: string, segment: number): string[] {
    const m = this.waiting.get(traceId);
    const files = m?.get(segment) ?? [];
    m?.delete(segment);
    if (m?.size === 0) this.waiting.delete(traceId);
    return files;
  }

  private unwait(file: string): void {
    for (const [traceId, m] of this.waiting) {
      for (const [segment, files] of m) {
        const i = files.indexOf(file);
        if (i < 0) continue;
        files.splice(i, 1);
        if (files.length === 0) m.delete(segment);
      }
      if (m.size === 0) this.waiting.delete(traceId);
    }
  }

  private fatal(file: string, fault: StoreFault): undefined {
    this.stop();
    this.o.onFatal(file, fault);
    return undefined;
  }

  /** A ledger record (outside an ingest), retried like any store work. */
  private async record(file: string, rec: FileRecord): Promise<boolean> {
    const done = await withRetry(file, this.retry, () => this.o.ledger.record(rec));
    if (done.ok) return true;
    if ('fault' in done) this.fatal(file, done.fault);
    return false;
  }

  private async takeOne(file: string): Promise<TakeResult | undefined> {
    const name = basename(file);
    const opened = openRegular(file);
    if (opened.kind === 'gone') return undefined;
    if (opened.kind === 'rejected') return this.reject(file, opened.reason);
    if (opened.kind === 'unreadable') {
      const r: TakeResult = { file, status: 'unreadable', events: 0, findings: 0, durationMs: 0, reason: opened.reason };
      if (!(await this.record(file, { name, status: 'unreadable', reason: opened.reason }))) return undefined;
      this.o.onResult(r);
      this.o.park?.(file);
      return r;
    }
    const storedPath = this.o.folder ? freeName(join(this.o.folder.processed, name)) : resolve(file);
    let done;
    try {
      done = await withRetry(file, this.retry, () => this.o.ingestor.ingest(opened.file, storedPath));
    } finally {
      closeSync(opened.file.fd);
    }
    if (!done.ok) return 'fault' in done ? this.fatal(file, done.fault) : undefined;
    return this.settle(done.value, storedPath);
  }

  /** Not a regular file: moved aside into quarantine/ (the node itself), or left where it is, with the reason logged and recorded. */
  private async reject(file: string, reason: string): Promise<TakeResult | undefined> {
    const r: TakeResult = { file, status: 'rejected', events: 0, findings: 0, durationMs: 0, reason };
    if (this.o.folder) {
      try {
        r.movedTo = quarantineFile(file, this.o.folder.quarantine, reason);
      } catch (e) {
        r.reason = `${reason}; cannot be moved aside (${(e as NodeJS.ErrnoException).code ?? String(e)}): left in place`;
      }
    }
    if (!(await this.record(file, { name: basename(file), status: 'rejected', reason: r.reason!, ...(r.movedTo ? { movedTo: r.movedTo } : {}) }))) return undefined;
    this.o.onResult(r);
    return r;
  }

  /** Moves the file where its outcome says, records the move, and reports it. */
  private async settle(ir: IngestResult, storedPath: string): Promise<TakeResult | undefined> {
    const r: TakeResult = { ...ir };
    const name = basename(ir.file);
    switch (ir.status) {
      case 'aborted':
        // Rolled back on a signal: stays in the folder, taken again at the next start.
        this.o.onResult(r);
        return r;
      case 'changed':
        this.o.onResult(r);
        this.o.retake?.(ir.file);
        return r;
      case 'incomplete':
        this.o.onResult(r);
        this.o.park?.(ir.file);
        return r;
      case 'waiting':
        this.addWaiting(ir);
        this.o.onResult(r);
        return r;
      default:
        break;
    }
    const status: FileStatus = ir.status;
    if (this.o.folder) {
      try {
        r.movedTo = status === 'quarantined' ? quarantineFile(ir.file, this.o.folder.quarantine, ir.reason ?? 'unknown reason') : status === 'ingested' ? moveTo(ir.file, storedPath) : moveInto(ir.file, this.o.folder.processed);
      } catch (e) {
        this.o.log.error({ file: name, status, err: (e as Error).message }, 'move failed: the file stays in the folder');
      }
      if (r.movedTo !== undefined) {
        const rec: FileRecord = { name, status, movedTo: r.movedTo, ...(ir.hash ? { hash: ir.hash } : {}), ...(ir.reason !== undefined ? { reason: ir.reason } : {}) };
        if (!(await this.record(ir.file, rec))) return r;
      }
    }
    this.o.onResult(r);
    return r;
  }

  private addWaiting(r: IngestResult): void {
    let m = this.waiting.get(r.traceId!);
    if (!m) {
      m = new Map();
      this.waiting.set(r.traceId!, m);
    }
    const files = m.get(r.segment!) ?? [];
    if (!files.includes(r.file)) files.push(r.file);
    m.set(r.segment!, files);
  }
}

/** An ingested file goes to the name its segments row was stored with. */
function moveTo(file: string, dest: string): string {
  if (freeName(dest) !== dest) throw new Error(`${dest} was taken while the file was ingested`);
  renameSync(file, dest);
  return dest;
}
