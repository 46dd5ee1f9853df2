import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseTraceText } from '../../src/trace/line-parser.js';
import { openSegment } from '../../src/trace/reader.js';
import { traceErrorOf } from './trace-error-of.js';

const H = '{"type":"header","format":"vfio-trace","version":1,"trace_id":"t"}';

const errorOf = traceErrorOf;

describe('LineParser errors name file, line and field', () => {
  const cases: [string, string, number, string | undefined, RegExp][] = [
    ['not JSON', `${H}\n{"type":"open",`, 2, undefined, /^not JSON \(at column 16\)$/],
    ['a non-object line', `${H}\n[1,2]`, 2, undefined, /expected a JSON object/],
    ['an unknown event type', `${H}\n{"type":"mprotect","seq":1}`, 2, 'type', /unknown event type "mprotect"/],
    ['a missing field', `${H}\n{"type":"open","seq":1,"pid":1,"path":"/dev/vfio/vfio"}`, 2, 'fd', /required/],
    ['a wrong type', `${H}\n{"type":"close","seq":1,"pid":"one","fd":3}`, 2, 'pid', /expected integer/],
    ['a u64 at 2^64', `${H}\n{"type":"munmap","seq":1,"pid":1,"vaddr":"0x10000000000000000","size":4096}`, 2, 'vaddr', /unsigned 64-bit/],
    ['a decimal u64 at 2^64', `${H}\n{"type":"munmap","seq":1,"pid":1,"vaddr":"18446744073709551616","size":4096}`, 2, 'vaddr', /at or above 2\^64/],
    ['a JSON number beyond 2^53', `${H}\n{"type":"munmap","seq":1,"pid":1,"vaddr":18446744073709551615,"size":4096}`, 2, 'vaddr', /below 2\^53/],
    ['a decreasing seq', `${H}\n{"type":"close","seq":5,"pid":1,"fd":3}\n{"type":"close","seq":4,"pid":1,"fd":3}`, 3, 'seq', /does not increase/],
    ['a map without size', `${H}\n{"type":"ioctl","seq":1,"pid":1,"fd":3,"cmd":"VFIO_IOMMU_MAP_DMA","arg":{"flags":["READ"],"vaddr":0,"iova":0}}`, 2, 'arg.size', /required/],
    ['a missing header', '{"type":"close","seq":1,"pid":1,"fd":3}', 1, 'type', /first line must be the header/],
    ['a wrong format', '{"type":"header","format":"pcap","version":1,"trace_id":"t"}', 1, 'format', /expected "vfio-trace"/],
    ['an unknown errno name', `${H}\n{"type":"close","seq":1,"pid":1,"fd":3,"ret":"EWHATEVER"}`, 2, 'ret', /unknown errno name/],
    ['pin with both forms', `${H}\n{"type":"pin","seq":1,"dev":"d","iova":0,"npage":1,"iovas":[0],"prot":["READ"]}`, 2, '(line)', /either iova and npage, or iovas/],
  ];
  for (const [what, text, line, field, reason] of cases) {
    it(`reports ${what}`, () => {
      const e = errorOf(text);
      expect(e.file).toBe('x.jsonl');
      expect(e.line).toBe(line);
      expect(e.field).toBe(field);
      expect(e.reason).toMatch(reason);
      expect(e.message.startsWith(`x.jsonl:${line}: `)).toBe(true);
    });
  }

  it('holds 64-bit values exactly, hex and decimal', () => {
    const { events } = parseTraceText(`${H}\n{"type":"munmap","seq":1,"pid":1,"vaddr":"0xffffffffffff0000","size":"18446744073709486080"}`);
    const e = events[0]!;
    expect(e.type === 'munmap' && [e.vaddr, e.size]).toEqual([0xffffffffffff0000n, 18446744073709486080n]);
  });

  it('skips blank lines and counts them in line numbers', () => {
    const e = errorOf(`${H}\n\n\n{"type":"close","seq":"1"}`);
    expect(e.line).toBe(4);
  });
});

describe('openSegment streams .jsonl and .jsonl.gz', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pinledger-reader-'));
  const body = `${H}\n{"type":"close","seq":1,"pid":1,"fd":3}\n{"type":"close","seq":2,"pid":1,"fd":4}\n`;

  it('reads a gzip-compressed segment', async () => {
    const f = join(dir, 'a.jsonl.gz');
    writeFileSync(f, gzipSync(body));
    const r = openSegment(f);
    expect((await r.header()).traceId).toBe('t');
    const seqs: number[] = [];
    for await (const e of r.events()) seqs.push(e.seq);
    expect(seqs).toEqual([1, 2]);
  });

  it('reports a truncated gzip file as a trace error', async () => {
    const f = join(dir, 'b.jsonl.gz');
    let long = body;
    for (let i = 3; i < 2000; i++) long += `{"type":"close","seq":${i},"pid":1,"fd":4}\n`;
    const gz = gzipSync(long);
    writeFileSync(f, gz.subarray(0, gz.length - 20));
    const r = openSegment(f);
    await expect(async () => {
      await r.header();
      for await (const _ of r.events()) void _;
    }).rejects.toThrow(/b\.jsonl\.gz:\d+: .*cannot read/);
  });
});
