/**
 * Streams one segment file (.jsonl or .jsonl.gz). The file is read in
 * large chunks and split into lines here, and the events of a chunk are
 * handed on together (`batches`), so the per-event cost is parsing, not
 * stream machinery. Memory does not grow with the file: a chunk and at most
 * one partial line (bounded by MAX_LINE_LENGTH) are held at a time.
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { TraceEvent, TraceHeader } from '../model/events.js';
import { LineParser, MAX_LINE_LENGTH } from './line-parser.js';
import { TraceError } from './trace-error.js';

export interface SegmentReader {
  /** Resolves once line 1 has been read. */
  header(): Promise<TraceHeader>;
  /** The events, a chunk's worth at a time. */
  batches(): AsyncGenerator<TraceEvent[]>;
  /** The events one at a time (built on batches). */
  events(): AsyncGenerator<TraceEvent>;
  readonly parser: LineParser;
  /** Bytes of the file read so far (compressed bytes for .gz). */
  bytesRead(): number;
  /** With `keepLines`: the trace line of each event of the last batch, in order. */
  readonly batchLines: string[];
}

const CHUNK = 1 << 20;

/**
 * `name` is how messages call the file (default: its path); `keepLines`
 * keeps each event's line (the store records the line behind a finding).
 */
export function openSegment(file: string, lastSeq = -1, name = file, keepLines = false): SegmentReader {
  const batchLines: string[] = [];
  const parser = new LineParser(name, lastSeq);
  const raw = createReadStream(file, { highWaterMark: CHUNK });
  let input: Readable = raw;
  if (file.endsWith('.gz')) {
    input = raw.pipe(createGunzip({ chunkSize: CHUNK }));
    raw.on('error', (e: Error) => input.destroy(e));
  }
  input.setEncoding('utf8');
  const chunks = input[Symbol.asyncIterator]() as AsyncIterator<string>;
  /** Complete lines not yet parsed, and the partial line after them. */
  let lines: string[] = [];
  let at = 0;
  let rest = '';
  let ended = false;

  const ioError = (e: unknown): TraceError => new TraceError(name, parser.lines + 1, undefined, `cannot read: ${(e as Error).message}`);

  const close = () => {
    input.destroy();
    raw.destroy();
  };

  /** Loads the next chunk's lines; false at the end of the file. */
  async function fill(): Promise<boolean> {
    if (ended) return false;
    let r: IteratorResult<string>;
    try {
      r = await chunks.next();
    } catch (e) {
      close();
      throw ioError(e);
    }
    if (r.done) {
      ended = true;
      lines = rest === '' ? [] : [rest];
      at = 0;
      rest = '';
      return lines.length > 0;
    }
    const parts = (rest + r.value).split('\n');
    rest = parts.pop()!;
    if (rest.length > MAX_LINE_LENGTH) {
      close();
      throw new TraceError(name, parser.lines + parts.length + 1, undefined, `line is longer than ${MAX_LINE_LENGTH} characters`);
    }
    lines = parts;
    at = 0;
    return true;
  }

  const strip = (l: string) => (l.endsWith('\r') ? l.slice(0, -1) : l);

  let headerPromise: Promise<TraceHeader> | undefined;
  async function readHeader(): Promise<TraceHeader> {
    for (;;) {
      while (at < lines.length) {
        const r = parser.push(strip(lines[at++]!));
        if (r && !('seq' in r)) return r;
      }
      if (!(await fill())) return parser.end();
    }
  }

  return {
    parser,
    batchLines,
    bytesRead: () => raw.bytesRead,
    header() {
      headerPromise ??= readHeader();
      return headerPromise;
    },
    async *batches() {
      await this.header();
      try {
        for (;;) {
          const batch: TraceEvent[] = [];
          batchLines.length = 0;
          while (at < lines.length) {
            const line = strip(lines[at++]!);
            const r = parser.push(line);
            if (r && 'seq' in r) {
              batch.push(r);
              if (keepLines) batchLines.push(line);
            }
          }
          if (batch.length > 0) yield batch;
          if (!(await fill())) return;
        }
      } finally {
        close();
      }
    },
    async *events() {
      for await (const batch of this.batches()) yield* batch;
    },
  };
}
