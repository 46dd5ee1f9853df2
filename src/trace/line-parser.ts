/**
 * Turns the lines of one segment into a header and events, line by line,
 * with no I/O: the file reader and the tests (a trace string) both feed it.
 */
import type { TraceEvent, TraceHeader } from '../model/events.js';
import { convertEvent, convertHeader } from './convert.js';
import { jsonErrorColumn } from './json-column.js';
import { IncompleteSegment } from './stop.js';
import { FieldError, TraceError } from './trace-error.js';
import { checkEvent, checkHeader } from './validate.js';

/** Longest line accepted, in characters; a longer one is a trace error. */
export const MAX_LINE_LENGTH = 1 << 20;

export class LineParser {
  private lineNo = 0;
  private header: TraceHeader | undefined;
  /** The header said `"end_record": true`: the file is complete only with an end record. */
  private endPromised = false;
  private endSeen = false;
  private eventCount = 0;

  /**
   * @param file name used in error messages
   * @param lastSeq the last seq of the previous segments of this trace;
   *   seq must keep increasing across segments.
   */
  constructor(
    readonly file: string,
    private lastSeq = -1,
  ) {}

  get headerSeen(): TraceHeader | undefined {
    return this.header;
  }

  get lines(): number {
    return this.lineNo;
  }

  /** Whether the header promised an end record (`"end_record": true`). */
  get promisesEnd(): boolean {
    return this.endPromised;
  }

  /** Whether the end record (`{"type":"end","events":N}`) was read. */
  get endRecord(): boolean {
    return this.endSeen;
  }

  get seq(): number {
    return this.lastSeq;
  }

  /** Seq must continue above the previous segment's last seq. */
  continueAfter(seq: number): void {
    this.lastSeq = seq;
  }

  private fail(field: string | undefined, reason: string): never {
    throw new TraceError(this.file, this.lineNo, field, reason);
  }

  /** Feeds one line; returns the header, an event, or undefined for a blank line or the end record. */
  push(text: string): TraceHeader | TraceEvent | undefined {
    this.lineNo++;
    if (text.length > MAX_LINE_LENGTH) this.fail(undefined, `line is longer than ${MAX_LINE_LENGTH} characters`);
    if (text.trim() === '') return undefined;
    if (this.endSeen) this.fail(undefined, 'a line after the end record: the end record must be the last line');
    // Never quote the line: it may be any file's contents (a link to /etc/shadow).
    const nul = text.indexOf('\u0000');
    if (nul >= 0) this.fail(undefined, `binary data, not a JSON Lines trace (a NUL byte at column ${nul + 1})`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      const col = jsonErrorColumn(text);
      this.fail(undefined, col > 0 ? `not JSON (at column ${col})` : 'not JSON');
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      this.fail(undefined, 'expected a JSON object');
    }
    const obj = json as Record<string, unknown>;
    try {
      if (this.header === undefined) {
        if (obj.type !== 'header') this.fail('type', 'the first line must be the header ("type":"header")');
        const p = checkHeader(obj);
        if (p) this.fail(p.field, p.reason);
        this.header = convertHeader(obj);
        this.endPromised = obj.end_record === true;
        return this.header;
      }
      if (obj.type === 'header') this.fail('type', 'a second header; a segment has one header, on line 1');
      if (obj.type === 'end') return this.endLine(obj);
      const p = checkEvent(obj);
      if (p) this.fail(p.field, p.reason);
      const ev = convertEvent(obj, this.lineNo, this.header.version);
      if (ev.seq <= this.lastSeq) {
        this.fail('seq', `seq ${ev.seq} does not increase (previous ${this.lastSeq})`);
      }
      this.lastSeq = ev.seq;
      this.eventCount++;
      return ev;
    } catch (e) {
      if (e instanceof FieldError) this.fail(e.field, e.reason);
      throw e;
    }
  }

  /** `{"type":"end","events":N}`: N must be the events of this segment. */
  private endLine(obj: Record<string, unknown>): undefined {
    const n = obj.events;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) this.fail('events', 'expected the number of events in this segment, an integer >= 0');
    if (n !== this.eventCount) this.fail('events', `the end record counts ${n} events; the segment has ${this.eventCount}`);
    this.endSeen = true;
    return undefined;
  }

  /**
   * Called after the last line: the header, or a TraceError for an empty
   * file; IncompleteSegment when the header promised an end record and none came.
   */
  end(): TraceHeader {
    if (!this.header) throw new TraceError(this.file, Math.max(this.lineNo, 1), undefined, 'empty file: no header line');
    if (this.endPromised && !this.endSeen) throw new IncompleteSegment(this.file);
    return this.header;
  }
}

export interface ParsedSegment {
  header: TraceHeader;
  events: TraceEvent[];
}

/** Parses a whole segment held in a string (tests, small inputs). */
export function parseTraceText(text: string, file = '<string>', lastSeq = -1): ParsedSegment {
  const parser = new LineParser(file, lastSeq);
  const events: TraceEvent[] = [];
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (const l of lines) {
    const r = parser.push(l);
    if (r && 'seq' in r) events.push(r);
  }
  return { header: parser.end(), events };
}
