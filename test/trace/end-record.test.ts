import { closeSync, fstatSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { hashFile } from '../../src/trace/hash.js';
import { parseTraceText } from '../../src/trace/line-parser.js';
import { IncompleteSegment, StopRequested, openSegment } from '../../src/trace/reader.js';
import { TraceError } from '../../src/trace/trace-error.js';

const dir = mkdtempSync(join(tmpdir(), 'pinledger-end-'));
const header = (extra = '', version = 1) => `{"type":"header","format":"vfio-trace","version":${version},"trace_id":"t"${extra}}`;
const EV = ['{"type":"open","seq":1,"pid":1,"fd":3,"path":"/dev/vfio/vfio"}', '{"type":"close","seq":2,"pid":1,"fd":3}'];
const PROMISE = ',"end_record":true';

function file(name: string, text: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function readAll(src: Parameters<typeof openSegment>[0], opts: Parameters<typeof openSegment>[4] = {}) {
  const r = openSegment(src, -1, 'x.jsonl', false, opts);
  const seqs: number[] = [];
  for await (const e of r.events()) seqs.push(e.seq);
  return { seqs, end: r.endRecord() };
}

async function failure(src: Parameters<typeof openSegment>[0], opts: Parameters<typeof openSegment>[4] = {}): Promise<Error> {
  try {
    await readAll(src, opts);
  } catch (e) {
    return e as Error;
  }
  throw new Error('no error');
}

describe('the end record', () => {
  it('is read as the last line, in version 1 and 2, and says so', async () => {
    for (const v of [1, 2]) {
      const p = file(`v${v}.jsonl`, [header(PROMISE, v), ...EV, '{"type":"end","events":2}', ''].join('\n'));
      expect(await readAll(p)).toEqual({ seqs: [1, 2], end: true });
    }
  });

  it('is accepted without the header promising it, and without a final newline', async () => {
    const p = file('nopromise.jsonl', [header(), ...EV, '{"type":"end","events":2}'].join('\n'));
    expect(await readAll(p)).toEqual({ seqs: [1, 2], end: true });
    const q = file('promise-nonl.jsonl', [header(PROMISE), ...EV, '{"type":"end","events":2}'].join('\n'));
    expect(await readAll(q)).toEqual({ seqs: [1, 2], end: true });
  });

  it('a file without one reads as before: endRecord() is false', async () => {
    const p = file('plain.jsonl', [header(), ...EV, ''].join('\n'));
    expect(await readAll(p)).toEqual({ seqs: [1, 2], end: false });
  });

  it('with a wrong count is a TraceError naming field events', async () => {
    const e = await failure(file('count.jsonl', [header(PROMISE), ...EV, '{"type":"end","events":3}', ''].join('\n')));
    expect(e).toBeInstanceOf(TraceError);
    expect(e.message).toBe('x.jsonl:4: field events: the end record counts 3 events; the segment has 2');
    const f = await failure(file('count2.jsonl', [header(), '{"type":"end","events":"2"}', ''].join('\n')));
    expect(f.message).toBe('x.jsonl:2: field events: expected the number of events in this segment, an integer >= 0');
  });

  it('followed by another line is a TraceError naming that line', async () => {
    const e = await failure(file('after.jsonl', [header(), EV[0], '{"type":"end","events":1}', EV[1], ''].join('\n')));
    expect(e).toBeInstanceOf(TraceError);
    expect(e.message).toBe('x.jsonl:4: a line after the end record: the end record must be the last line');
  });

  it('promised and missing: IncompleteSegment, from the reader and from parseTraceText', async () => {
    const e = await failure(file('missing.jsonl', [header(PROMISE), ...EV, ''].join('\n')));
    expect(e).toBeInstanceOf(IncompleteSegment);
    expect(e.message).toBe('no end record yet: the writer has not finished');
    expect(() => parseTraceText([header(PROMISE), ...EV].join('\n'))).toThrow(IncompleteSegment);
    // Only the header so far.
    expect(await failure(file('onlyheader.jsonl', header(PROMISE) + '\n'))).toBeInstanceOf(IncompleteSegment);
  });

  it('promised, and the last line half written: IncompleteSegment, not a trace error', async () => {
    const e = await failure(file('half.jsonl', [header(PROMISE), EV[0], '{"type":"close","se'].join('\n')));
    expect(e).toBeInstanceOf(IncompleteSegment);
    // Without the promise the half line is bad input, as before.
    const f = await failure(file('half-nopromise.jsonl', [header(), EV[0], '{"type":"close","se'].join('\n')));
    expect(f).toBeInstanceOf(TraceError);
    expect(f.message).toBe('x.jsonl:3: not JSON (at column 20)');
  });

  it('promised, and a .gz cut short: IncompleteSegment', async () => {
    const gz = gzipSync([header(PROMISE), ...EV, '{"type":"end","events":2}', ''].join('\n'));
    expect(await readAll(file('whole.jsonl.gz', gz))).toEqual({ seqs: [1, 2], end: true });
    expect(await failure(file('cut.jsonl.gz', gz.subarray(0, gz.length - 12)))).toBeInstanceOf(IncompleteSegment);
  });
});

describe('reading from an fd, with limits', () => {
  it('reads an fd from offset 0 and leaves it open', async () => {
    const p = file('fd.jsonl', [header(), ...EV, ''].join('\n'));
    const fd = openSync(p, 'r');
    try {
      expect(await readAll({ fd, path: p })).toEqual({ seqs: [1, 2], end: false });
      // Again, from offset 0: positioned reads.
      expect(await readAll({ fd, path: p })).toEqual({ seqs: [1, 2], end: false });
      expect(fstatSync(fd).size).toBeGreaterThan(0);
    } finally {
      closeSync(fd);
    }
  });

  it('decides .gz by the path given with the fd', async () => {
    const p = file('fdgz.jsonl.gz', gzipSync([header(), ...EV, ''].join('\n')));
    const fd = openSync(p, 'r');
    try {
      expect(await readAll({ fd, path: p })).toEqual({ seqs: [1, 2], end: false });
    } finally {
      closeSync(fd);
    }
  });

  it('maxBytes counts uncompressed bytes: a small gzip of a large file is refused', async () => {
    const big = [header(), ...Array.from({ length: 50_000 }, (_, i) => `{"type":"close","seq":${i + 1},"pid":1,"fd":3}`), ''].join('\n');
    const p = file('bomb.jsonl.gz', gzipSync(big));
    const e = await failure(p, { maxBytes: 100_000 });
    expect(e).toBeInstanceOf(TraceError);
    expect(e.message).toBe('x.jsonl:1: larger than the limit of 100000 bytes uncompressed (--max-file-size)');
    expect((await readAll(p, { maxBytes: big.length })).seqs.length).toBe(50_000);
  });

  it('shouldStop stops the read with StopRequested', async () => {
    const p = file('stop.jsonl', [header(), ...EV, ''].join('\n'));
    const e = await failure(p, { shouldStop: () => true });
    expect(e).toBeInstanceOf(StopRequested);
  });
});

describe('hashFile', () => {
  it('hashes a path or an fd to the sha256 of the stored bytes, and stops on request', async () => {
    const data = Buffer.alloc(3 * (1 << 20) + 5, 7);
    const p = file('hash.bin', data);
    const want = createHash('sha256').update(data).digest('hex');
    expect(await hashFile(p)).toBe(want);
    const fd = openSync(p, 'r');
    try {
      expect(await hashFile({ fd, path: p })).toBe(want);
      expect(await hashFile({ fd, path: p })).toBe(want);
      let n = 0;
      await expect(hashFile({ fd, path: p }, () => ++n > 2)).rejects.toBeInstanceOf(StopRequested);
    } finally {
      closeSync(fd);
    }
  });
});
