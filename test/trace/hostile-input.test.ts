/**
 * Input that is not a trace, or a trace that carries terminal control
 * characters: the reader's messages never quote the file's bytes, and text
 * fields with control characters are refused by the schema.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { printable } from '../../src/cli/format.js';
import { jsonErrorColumn } from '../../src/trace/json-column.js';
import { openSegment } from '../../src/trace/reader.js';
import { TraceError } from '../../src/trace/trace-error.js';
import { traceErrorOf } from './trace-error-of.js';

const H = '{"type":"header","format":"vfio-trace","version":2,"trace_id":"t"}';

describe('messages never quote what the file holds', () => {
  it('a line of /etc/shadow: not JSON at column 1, nothing of the line after the file and line', () => {
    const line = 'root:$y$j9T$secret:19000:0:99999:7:::';
    const e = traceErrorOf(line + '\n');
    expect(e.message).toBe('x.jsonl:1: not JSON (at column 1)');
    // After "x.jsonl:1": no '$' and no three characters in a row of the line.
    const after = e.message.slice('x.jsonl:1'.length);
    expect(after).toBe(': not JSON (at column 1)');
    expect(after).not.toContain('$');
    for (let i = 0; i + 3 <= line.length; i++) expect(after).not.toContain(line.slice(i, i + 3));
  });

  it('the same through the file reader', async () => {
    const f = join(mkdtempSync(join(tmpdir(), 'pinledger-hostile-')), 'shadow');
    writeFileSync(f, 'root:$y$j9T$secret:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n');
    const r = openSegment(f, -1, 'shadow');
    await expect(r.header()).rejects.toThrow(new TraceError('shadow', 1, undefined, 'not JSON (at column 1)'));
  });

  it('a binary file says it is binary', () => {
    expect(traceErrorOf('\u0000\u0001\u0002ELF\n').message).toBe('x.jsonl:1: binary data, not a JSON Lines trace (a NUL byte at column 1)');
    expect(traceErrorOf(`${H}\n{"type":"open"\u0000}\n`).message).toBe('x.jsonl:2: binary data, not a JSON Lines trace (a NUL byte at column 15)');
  });

  it('the column is where the JSON goes wrong', () => {
    expect(traceErrorOf(`${H}\n{"type":x}\n`).message).toBe('x.jsonl:2: not JSON (at column 9)');
    expect(traceErrorOf(`${H}\n{"type":"open"} trailing\n`).message).toBe('x.jsonl:2: not JSON (at column 17)');
    expect(jsonErrorColumn('[1,2,{"a":[true,null,-1.5e3,"\\u00e9"]},]')).toBe(40);
    expect(jsonErrorColumn('{"a":"b\\q"}')).toBe(8);
    expect(jsonErrorColumn('[[[[[[')).toBe(7);
  });

  it('an unknown event type is quoted only when it looks like a name', () => {
    expect(traceErrorOf(`${H}\n{"type":"mprotect","seq":1}\n`).message).toBe('x.jsonl:2: field type: unknown event type "mprotect"');
    expect(traceErrorOf(`${H}\n{"type":"$6$salt$hash:x","seq":1}\n`).message).toBe('x.jsonl:2: field type: unknown event type');
  });
});

describe('control characters in text fields', () => {
  it('a trace_id with ESC[2J is refused by the reader', () => {
    const e = traceErrorOf('{"type":"header","format":"vfio-trace","version":1,"trace_id":"vm\\u001b[2J"}\n');
    expect(e.message).toBe('x.jsonl:1: field trace_id: contains a control character (C0, DEL or C1), which a trace may not hold in text');
  });

  it('host, comm and dev too; DEL and C1 as well as C0', () => {
    const reason = 'contains a control character (C0, DEL or C1), which a trace may not hold in text';
    expect(traceErrorOf('{"type":"header","format":"vfio-trace","version":1,"trace_id":"t","host":"h\\u007f"}\n').field).toBe('host');
    expect(traceErrorOf('{"type":"header","format":"vfio-trace","version":2,"trace_id":"t","attached":[{"pid":1,"comm":"q\\u009b2J"}]}\n').field).toBe('attached.0.comm');
    const p = traceErrorOf(`${H}\n{"type":"process","seq":1,"pid":1,"op":"start","comm":"\\u001b]0;x\\u0007"}\n`);
    expect([p.field, p.reason]).toEqual(['comm', reason]);
    const d = traceErrorOf(`${H}\n{"type":"device","seq":1,"dev":"\\r83b8","op":"open"}\n`);
    expect([d.field, d.reason]).toEqual(['dev', reason]);
  });

  it('printable() escapes C0, DEL, C1 and bidi controls, and keeps other text', () => {
    expect(printable('vm\u001b[2J')).toBe('vm\\x1b[2J');
    expect(printable('a\tb\nc\u007fd\u009be')).toBe('a\\x09b\\x0ac\\x7fd\\x9be');
    expect(printable('x\u202ey\u2066')).toBe('x\\u202ey\\u2066');
    expect(printable('host42/vm-7f3a é 漢')).toBe('host42/vm-7f3a é 漢');
  });
});
