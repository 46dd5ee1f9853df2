/**
 * Fuzzing the reader, the model and the CLI with a fixed seed: random
 * bytes, truncated gzip, huge lines, deep JSON, numbers at and beyond
 * 2^64, wrong types in every field, random mutations of the samples. No
 * crash and no hang: either a replay, or a TraceError naming file and line
 * (exit status 2), and a database that a bad file leaves unchanged.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../../src/model/backends/index.js';
import { DifferentialReplay } from '../../src/model/replay/differential.js';
import { parseTraceText } from '../../src/trace/line-parser.js';
import { TraceError } from '../../src/trace/trace-error.js';

const root = new URL('../..', import.meta.url).pathname;
const SEED = 424242;
const RUNS = Number(process.env.PINLEDGER_FUZZ_RUNS ?? 300);
const samples = readdirSync(join(root, 'traces/samples'))
  .filter((f) => f.endsWith('.jsonl') && !f.startsWith('invalid'))
  .map((f) => readFileSync(join(root, 'traces/samples', f), 'utf8'));
const all = new Map(Object.entries(BACKENDS));

/** Parses and replays through every design; only a TraceError may escape. */
function replayText(text: string): 'ok' | TraceError {
  try {
    const { header, events } = parseTraceText(text, 'fuzz.jsonl');
    const d = new DifferentialReplay(all, 'upstream');
    const err = d.beginSegment(header);
    if (err) return 'ok';
    for (const e of events) d.apply(e);
    return 'ok';
  } catch (e) {
    if (e instanceof TraceError) {
      expect(e.message).toMatch(/^fuzz\.jsonl:\d+: /);
      return e;
    }
    throw e;
  }
}

function cli(...args: string[]) {
  return spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), ...args], { encoding: 'utf8', timeout: 60000 });
}

describe('fuzz: reader and model', () => {
  it('random bytes are a trace error, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        replayText(Buffer.from(bytes).toString('utf8'));
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('random mutations of the samples replay or fail cleanly', () => {
    const mutate = fc.tuple(fc.integer({ min: 0, max: samples.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.constantFrom('delete', 'insert', 'replace', 'dropline', 'dupline'), fc.string({ maxLength: 3 })), { minLength: 1, maxLength: 6 }));
    fc.assert(
      fc.property(mutate, ([i, edits]) => {
        let text = samples[i]!;
        for (const [pos, kind, s] of edits) {
          const at = pos % Math.max(1, text.length);
          if (kind === 'delete') text = text.slice(0, at) + text.slice(at + 1);
          else if (kind === 'insert') text = text.slice(0, at) + s + text.slice(at);
          else if (kind === 'replace') text = text.slice(0, at) + s + text.slice(at + s.length);
          else {
            const lines = text.split('\n');
            const l = pos % lines.length;
            if (kind === 'dropline') lines.splice(l, 1);
            else lines.splice(l, 0, lines[l]!);
            text = lines.join('\n');
          }
        }
        replayText(text);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('wrong types in every field of every event are trace errors naming the field', () => {
    const wrong: unknown[] = [null, true, 'x', -1, 1.5, [], {}, [1], '0x1ffffffffffffffffff', 2 ** 64, '-5'];
    let errors = 0;
    for (const text of samples) {
      const lines = text.trim().split('\n');
      for (let n = 0; n < lines.length; n++) {
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(lines[n]!) as Record<string, unknown>;
        } catch {
          continue;
        }
        const paths: string[][] = [];
        const walk = (o: unknown, p: string[]) => {
          if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) (paths.push([...p, k]), walk(v, [...p, k]));
        };
        walk(obj, []);
        for (const path of paths.slice(0, 12)) {
          for (const w of wrong) {
            const copy = JSON.parse(lines[n]!) as Record<string, unknown>;
            let at: Record<string, unknown> = copy;
            for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
            at[path.at(-1)!] = w;
            const mutated = [...lines];
            mutated[n] = JSON.stringify(copy);
            const r = replayText(mutated.join('\n'));
            if (r !== 'ok') {
              errors++;
              expect(r.line, `${JSON.stringify(path)} = ${JSON.stringify(w)} on line ${n + 1}: ${r.message}`).toBe(n + 1);
            }
          }
        }
      }
    }
    expect(errors).toBeGreaterThan(1000);
  });

  it('numbers at and beyond 2^64, huge lines and deep JSON are trace errors', () => {
    const H = '{"type":"header","format":"vfio-trace","version":1,"trace_id":"t"}';
    const cases = [
      `${H}\n{"type":"munmap","seq":1,"pid":1,"vaddr":"0x10000000000000000","size":1}`,
      `${H}\n{"type":"munmap","seq":1,"pid":1,"vaddr":"18446744073709551616","size":1}`,
      `${H}\n{"type":"munmap","seq":1,"pid":1,"vaddr":18446744073709551616,"size":1}`,
      `${H}\n{"type":"munmap","seq":1,"pid":1,"vaddr":9007199254740993,"size":1}`,
      `${H}\n{"type":"close","seq":1,"pid":1,"fd":3,"comment":"${'x'.repeat(1 << 20)}"}`,
      `${H}\n${'['.repeat(200000)}${']'.repeat(200000)}`,
      `${H}\n{"type":"close","seq":1,"pid":1,"fd":3,"deep":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`,
    ];
    for (const c of cases.slice(0, 6)) expect(replayText(c)).toBeInstanceOf(TraceError);
    // Extra deep data in an unknown field is allowed and ignored.
    expect(replayText(cases[6]!)).toBe('ok');
    // The largest u64 is exact.
    expect(replayText(`${H}\n{"type":"munmap","seq":1,"pid":1,"vaddr":"0xfffffffffffff000","size":"0x1000"}`)).toBe('ok');
  });
});

describe('fuzz: the CLI', () => {
  it('exits 2 with file and line for random bytes, truncated gzip and a huge line, and leaves the database unchanged', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-fuzz-'));
    const db = join(dir, 'p.db');
    expect(cli('ingest', join(root, 'traces/samples/vm-boot.jsonl'), '--db', db).status).toBe(0);
    const dump = () => {
      const d = new Database(db, { readonly: true });
      const out = JSON.stringify(['traces', 'findings', 'locked_vm', 'accounting', 'segment_state'].map((t) => d.prepare(`SELECT * FROM ${t}`).all()));
      d.close();
      return out;
    };
    const before = dump();
    const rnd = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 2000 }), { numRuns: 5, seed: SEED });
    const files: [string, Buffer][] = rnd.map((b, i) => [`random-${i}.jsonl`, Buffer.from(b)]);
    const gz = gzipSync(readFileSync(join(root, 'traces/samples/vgpu-churn.jsonl')));
    files.push(['truncated.jsonl.gz', gz.subarray(0, gz.length >> 1)]);
    files.push(['huge.jsonl', Buffer.from('{"type":"header","format":"vfio-trace","version":1,"trace_id":"h"}\n{"type":"close","seq":1,"pid":1,"fd":3,"x":"' + 'y'.repeat(2 << 20) + '"}\n')]);
    for (const [name, data] of files) {
      writeFileSync(join(dir, name), data);
      const r = cli('replay', join(dir, name));
      expect(r.status, `${name}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${name.replace(/\./g, '\\.')}:\\d+: `));
      const i = cli('ingest', join(dir, name), '--db', db);
      expect(i.status, name).toBe(2);
    }
    expect(dump()).toBe(before);
  });
});
