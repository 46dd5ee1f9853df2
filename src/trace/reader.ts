/**
 * Streams one segment file (.jsonl or .jsonl.gz). The file is read in
 * large chunks and split into lines here, and the events of a chunk are
 * handed on together (`batches`), so the per-event cost is parsing, not
 * stream machinery. Memory does not grow with the file: a chunk and at most
 * one partial line (bounded by MAX_LINE_LENGTH) are held at a time.
 */
import { createReadStream, read } from 'node:fs';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { StringDecoder } from 'node:string_decoder';
import type { TraceEvent, TraceHeader } from '../model/events.js';
import type { SegmentSource } from './hash.js';
import { LineParser, MAX_LINE_LENGTH } from './line-parser.js';
import { IncompleteSegment, StopRequested } from './stop.js';
import { TraceError } from './trace-error.js';

export { IncompleteSegment, StopRequested } from './stop.js';
export type { SegmentSource } from './hash.js';

export interface ReadLimits {
  /** More uncompressed bytes than this is a TraceError (--max-file-size). */
  maxBytes?: number;
  /** Checked per chunk: when it says stop, the reader throws StopRequested. */
  shouldStop?: () => boolean;
}

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
  /** Whether the segment's end record (`{"type":"end","events":N}`) was read. */
  endRecord(): boolean;
}

const CHUNK = 1 << 20;

const readAt = promisify(read);

/** The bytes of an open fd from offset 0, by positioned reads; the fd is never closed here. */
function fdStream(fd: number): Readable & { bytesRead: number } {
  const counter = { bytesRead: 0 };
  async function* chunks() {
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK);
      const { bytesRead } = await readAt(fd, buf, 0, CHUNK, counter.bytesRead);
      if (bytesRead === 0) return;
      counter.bytesRead += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  }
  const stream = Readable.from(chunks(), { objectMode: false });
  return Object.defineProperty(stream, 'bytesRead', { get: () => counter.bytesRead }) as Readable & { bytesRead: number };
}

/** A complete end record on a last line that has no newline after it. */
function isEndRecord(line: string): boolean {
  try {
    const j = JSON.parse(line) as { type?: unknown } | null;
    return typeof j === 'object' && j !== null && j.type === 'end';
  } catch {
    return false;
  }
}

/**
 * `file` is a path, or an fd the caller opened with the path it was opened
 * from (read with positioned reads from offset 0, never closed here; `.gz`
 * is decided by the path). `name` is how messages call the file (default:
 * its path); `keepLines` keeps each event's line (the store records the
 * line behind a finding).
 */
export function openSegment(file: SegmentSource, lastSeq = -1, name = typeof file === 'string' ? file : file.path, keepLines = false, opts: ReadLimits = {}): SegmentReader {
  const path = typeof file === 'string' ? file : file.path;
  const batchLines: string[] = [];
  const parser = new LineParser(name, lastSeq);
  const raw = typeof file === 'string' ? createReadStream(file, { highWaterMark: CHUNK }) : fdStream(file.fd);
  let input: Readable = raw;
  if (path.endsWith('.gz')) {
    input = raw.pipe(createGunzip({ chunkSize: CHUNK }));
    raw.on('error', (e: Error) => input.destroy(e));
  }
  const chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const decoder = new StringDecoder('utf8');
  /** Uncompressed bytes read so far. */
  let bytes = 0;
  /** Complete lines not yet parsed, and the partial line after them. */
  let lines: string[] = [];
  let at = 0;
  let rest = '';
  let ended = false;

  const ioError = (e: unknown): Error => {
    // A .gz cut short: incomplete when the writer promised an end record.
    if ((e as NodeJS.ErrnoException).code === 'Z_BUF_ERROR' && parser.promisesEnd) return new IncompleteSegment(name);
    return new TraceError(name, parser.lines + 1, undefined, `cannot read: ${(e as Error).message}`);
  };

  const close = () => {
    input.destroy();
    raw.destroy();
  };

  /** Loads the next chunk's lines; false at the end of the file. */
  async function fill(): Promise<boolean> {
    if (ended) return false;
    if (opts.shouldStop?.()) {
      close();
      throw new StopRequested();
    }
    let r: IteratorResult<Buffer>;
    try {
      r = await chunks.next();
    } catch (e) {
      close();
      throw ioError(e);
    }
    if (r.done) {
      ended = true;
      const last = rest + decoder.end();
      rest = '';
      at = 0;
      lines = last === '' ? [] : [last];
      // A last line without its newline, from a writer that promised an end
      // record, is a line still being written.
      if (last !== '' && parser.promisesEnd && !isEndRecord(last)) {
        close();
        throw new IncompleteSegment(name);
      }
      return lines.length > 0;
    }
    bytes += r.value.length;
    if (opts.maxBytes !== undefined && bytes > opts.maxBytes) {
      close();
      throw new TraceError(name, parser.lines + 1, undefined, `larger than the limit of ${opts.maxBytes} bytes uncompressed (--max-file-size)`);
    }
    const parts = (rest + decoder.write(r.value)).split('\n');
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
    endRecord: () => parser.endRecord,
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
          if (!(await fill())) {
            parser.end();
            return;
          }
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
