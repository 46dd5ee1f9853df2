/**
 * Takes files one at a time through the Ingestor, in arrival order: a
 * segment that arrives before its predecessor waits, and its predecessor's
 * ingest releases it. With a drop folder, a finished file moves to
 * processed/ (ingested, or a duplicate of one), a bad one to quarantine/
 * with a .reason.txt beside it; a waiting one stays where it is.
 */
import { mkdirSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { IngestResult, Ingestor } from '../store/ingest.js';

export interface DropFolder {
  processed: string;
  quarantine: string;
}

export class IngestRunner {
  /** Waiting files by trace and segment. */
  private readonly waiting = new Map<string, Map<number, string>>();
  private chain: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly ingestor: Ingestor,
    private readonly onResult: (r: IngestResult) => void,
    private readonly folder?: DropFolder,
  ) {
    if (folder) {
      mkdirSync(folder.processed, { recursive: true });
      mkdirSync(folder.quarantine, { recursive: true });
    }
  }

  /** Queues a file; files are ingested one after another. */
  submit(file: string): Promise<void> {
    const next = this.chain.then(() => this.take(file));
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** No further file is taken; the one in progress finishes or rolls back. */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves when everything queued so far is done. */
  idle(): Promise<unknown> {
    return this.chain;
  }

  /** Files still waiting for a predecessor. */
  pending(): { file: string; traceId: string; segment: number }[] {
    const out: { file: string; traceId: string; segment: number }[] = [];
    for (const [traceId, m] of this.waiting) for (const [segment, file] of m) out.push({ file, traceId, segment });
    return out;
  }

  /** Where an ingested file ends up: processed/ in a drop folder, else where it is. */
  private storedPath(file: string): string {
    return this.folder ? freeName(join(this.folder.processed, basename(file))) : resolve(file);
  }

  private async take(file: string): Promise<void> {
    if (this.stopped || !existsSync(file)) return;
    const r = await this.ingestor.ingest(file, this.storedPath(file));
    this.onResult(r);
    this.settle(r);
    // Each ingested segment may release its successor.
    let cur = r;
    while (!this.stopped && cur.status === 'ingested' && cur.traceId !== undefined && cur.segment !== undefined) {
      const next = this.waiting.get(cur.traceId)?.get(cur.segment + 1);
      if (!next) break;
      this.waiting.get(cur.traceId)!.delete(cur.segment + 1);
      cur = await this.ingestor.ingest(next, this.storedPath(next));
      this.onResult(cur);
      this.settle(cur);
    }
  }

  private settle(r: IngestResult): void {
    if (r.status === 'waiting') {
      let m = this.waiting.get(r.traceId!);
      if (!m) {
        m = new Map();
        this.waiting.set(r.traceId!, m);
      }
      m.set(r.segment!, r.file);
      return;
    }
    if (!this.folder || r.status === 'aborted') return;
    if (r.status === 'quarantined') {
      const dest = freeName(join(this.folder.quarantine, basename(r.file)));
      // The reason first: a crash before the rename leaves the file to be taken again.
      writeFileSync(`${dest}.reason.txt`, `${r.reason ?? 'unknown reason'}\n`);
      renameSync(r.file, dest);
      return;
    }
    renameSync(r.file, freeName(join(this.folder.processed, basename(r.file))));
  }
}

/** The path itself, or with .1, .2, ... before the extension when taken. */
function freeName(path: string): string {
  if (!existsSync(path)) return path;
  const m = /^(.*?)((\.jsonl)?(\.gz)?)$/.exec(path)!;
  for (let i = 1; ; i++) {
    const p = `${m[1]}.${i}${m[2]}`;
    if (!existsSync(p)) return p;
  }
}
