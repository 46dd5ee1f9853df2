/**
 * Streams one segment file (.jsonl or .jsonl.gz) line by line. Memory does
 * not grow with the file: lines are parsed and handed on one at a time.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { TraceEvent, TraceHeader } from '../model/events.js';
import { LineParser } from './line-parser.js';
import { TraceError } from './trace-error.js';

export interface SegmentReader {
  /** Resolves once line 1 has been read. */
  header(): Promise<TraceHeader>;
  events(): AsyncGenerator<TraceEvent>;
  readonly parser: LineParser;
  /** Bytes of the file read so far (compressed bytes for .gz). */
  bytesRead(): number;
}

/** `name` is how messages call the file (default: its path). */
export function openSegment(file: string, lastSeq = -1, name = file): SegmentReader {
  const parser = new LineParser(name, lastSeq);
  const raw = createReadStream(file);
  let input: Readable = raw;
  if (file.endsWith('.gz')) {
    input = raw.pipe(createGunzip());
    raw.on('error', (e: Error) => input.destroy(e));
  }
  let streamError: Error | undefined;
  input.on('error', (e: Error) => {
    streamError ??= e;
  });
  const rl = createInterface({ input, crlfDelay: Infinity });
  const it = rl[Symbol.asyncIterator]();

  const ioError = (e: unknown): TraceError =>
    new TraceError(name, parser.lines + 1, undefined, `cannot read: ${(e as Error).message}`);

  async function next(): Promise<string | undefined> {
    try {
      const r = await it.next();
      if (streamError) throw streamError;
      return r.done ? undefined : r.value;
    } catch (e) {
      rl.close();
      input.destroy();
      throw ioError(streamError ?? e);
    }
  }

  let headerPromise: Promise<TraceHeader> | undefined;
  async function readHeader(): Promise<TraceHeader> {
    for (;;) {
      const l = await next();
      if (l === undefined) return parser.end();
      const r = parser.push(l);
      if (r && !('seq' in r)) return r;
    }
  }

  return {
    parser,
    bytesRead: () => raw.bytesRead,
    header() {
      headerPromise ??= readHeader();
      return headerPromise;
    },
    async *events() {
      await this.header();
      try {
        for (;;) {
          const l = await next();
          if (l === undefined) return;
          const r = parser.push(l);
          if (r && 'seq' in r) yield r;
        }
      } finally {
        rl.close();
        input.destroy();
      }
    },
  };
}
