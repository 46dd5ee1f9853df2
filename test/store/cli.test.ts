/**
 * The store's refusals as a user meets them (bin/pinledger.js, so run
 * `npm run build` first): a database newer than the code, a file that is
 * not a database, a corrupt one; `check` and `segments`.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openStore, SCHEMA_VERSION } from '../../src/store/db.js';
import { StoreFault } from '../../src/store/store-error.js';
import { churnSegments } from '../daemon/fixtures.js';
import { tempDir, writeSegments } from './helpers.js';

const root = new URL('../..', import.meta.url).pathname;
const cli = (...args: string[]) => spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), ...args], { encoding: 'utf8' });

function ingested(tag: string): { dir: string; db: string; files: string[] } {
  const dir = tempDir(tag);
  const files = writeSegments(dir, churnSegments(`cli/${tag}`, 2, 30));
  const db = join(dir, 'p.db');
  const r = cli('ingest', ...files, '--db', db);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return { dir, db, files };
}

describe('a database newer than the code', () => {
  it('is refused with both versions, exit 2, one line, the file unchanged', () => {
    const { dir, db, files } = ingested('future');
    const w = new Database(db);
    w.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    w.close();
    const before = readFileSync(db);
    expect(() => openStore(db)).toThrow(new StoreFault('fatal', 'SCHEMA_NEWER', `${db} has schema version ${SCHEMA_VERSION + 1}, newer than this pinledger knows (${SCHEMA_VERSION})`));
    for (const args of [['ingest', files[0]!, '--db', db], ['traces', '--db', db], ['segments', '--db', db]]) {
      const r = cli(...args);
      expect(r.status, args[0]).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`pinledger: ${db} has schema version ${SCHEMA_VERSION + 1}, newer than this pinledger knows (${SCHEMA_VERSION})\n`);
    }
    expect(readFileSync(db).equals(before)).toBe(true);
    expect(statSync(dir).isDirectory()).toBe(true);
  });
});

describe('a file that is not a database', () => {
  it('one line, exit 2, from ingest, traces and check; openStore says it as a fatal StoreFault', () => {
    const dir = tempDir('notadb');
    const db = join(dir, 'p.db');
    writeFileSync(db, 'this is not a database, it only has its name\n'.repeat(200));
    const [seg] = writeSegments(dir, churnSegments('cli/notadb', 1, 10));
    expect(() => openStore(db)).toThrow(new StoreFault('fatal', 'SQLITE_NOTADB', `${db} is not an SQLite database (or its header is corrupt)`));
    for (const args of [['ingest', seg!, '--db', db], ['traces', '--db', db], ['check', '--db', db]]) {
      const r = cli(...args);
      expect(r.status, args[0]).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.split('\n')).toHaveLength(2);
      expect(r.stderr).toMatch(/^pinledger: .*not an SQLite database/);
    }
  });
});

describe('pinledger check', () => {
  it('a sound database: exit 0 and its facts', () => {
    const { db } = ingested('check-ok');
    const r = cli('check', '--db', db);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      [
        `database   ${db}`,
        `schema     version ${SCHEMA_VERSION}`,
        'traces     1',
        'segments   2 ingested, 0 quarantined',
        'files      ingested 2, duplicate 0, waiting 0, quarantined 0, incomplete 0, unreadable 0, rejected 0',
        'integrity  ok',
        '',
      ].join('\n'),
    );
    const j = JSON.parse(cli('check', '--db', db, '--json').stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ schema_version: SCHEMA_VERSION, traces: 1, segments: { ingested: 2, quarantined: 0 }, problems: [], ok: true });
  });

  it('a corrupt database: exit 1, the problems one per line', () => {
    const { db } = ingested('check-bad');
    const size = statSync(db).size;
    const page = (new Database(db, { readonly: true }).pragma('page_size', { simple: true }) as number);
    // The last page (a leaf of some table or index) overwritten with garbage.
    const fd = openSync(db, 'r+');
    writeSync(fd, Buffer.alloc(page, 0xa5), 0, page, size - page);
    closeSync(fd);
    const r = cli('check', '--db', db);
    expect(r.status).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[5]).toMatch(/^integrity  \d+ problems?$/);
    expect(lines.length).toBeGreaterThan(6);
  });
});

describe('pinledger segments', () => {
  it('lists the ledger: every file and its state', () => {
    const { db, files } = ingested('segments');
    // The same first file again: still one row, ingested.
    expect(cli('ingest', files[0]!, '--db', db).status).toBe(0);
    const j = JSON.parse(cli('segments', '--db', db, '--json').stdout) as { files: Record<string, unknown>[]; truncated: boolean };
    expect(j.truncated).toBe(false);
    expect(j.files.map((f) => [f.name, f.status, f.trace_id, f.segment, f.reason, f.moved_to]).sort()).toEqual([
      ['seg0.jsonl', 'ingested', 'cli/segments', 0, null, null],
      ['seg1.jsonl', 'ingested', 'cli/segments', 1, null, null],
    ]);
    const text = cli('segments', '--db', db, '--status', 'ingested');
    expect(text.status).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(/^file\s+status\s+trace\s+segment\s+reason\s+moved to\s+when$/);
    expect(cli('segments', '--db', db, '--status', 'quarantined').stdout).toBe('no files quarantined\n');
  });
});

describe('pinledger findings with folded findings', () => {
  it('shows the aggregate row with its occurrences and seq range; --json says aggregate', () => {
    const dir = tempDir('findings-folded');
    const lines = [JSON.stringify({ type: 'header', format: 'vfio-trace', version: 1, trace_id: 'cli/folded', segment: 0 })];
    lines.push(JSON.stringify({ type: 'open', seq: 1, pid: 7, fd: 3, path: '/dev/vfio/vfio' }));
    for (let s = 2; s <= 11; s++) lines.push(`{"type":"ioctl","seq":${s},"pid":7,"fd":3,"cmd":"VFIO_GET_API_VERSION","ret":1}`);
    const [f] = writeSegments(dir, [lines.join('\n') + '\n']);
    const db = join(dir, 'p.db');
    const r = cli('ingest', f!, '--db', db, '--max-findings-per-code', '2');
    expect(r.stderr).toBe('');
    const text = cli('findings', '--db', db).stdout.split('\n').filter((l) => !l.startsWith(' '));
    expect(text).toEqual([
      'cli/folded seq 2 [upstream] error RET_MISMATCH: The trace observed 1 where the model returns 0',
      'cli/folded seq 3 [upstream] error RET_MISMATCH: The trace observed 1 where the model returns 0',
      'cli/folded seq 4 [upstream] error RET_MISMATCH: The trace observed 1 where the model returns 0 (8 occurrences, seq 4..11; this is the first)',
      '',
    ]);
    const j = JSON.parse(cli('findings', '--db', db, '--json').stdout) as { findings: { seq: number; aggregate: boolean; occurrences: number; last_seq: number | null }[] };
    expect(j.findings.map((x) => [x.seq, x.aggregate, x.occurrences, x.last_seq])).toEqual([
      [2, false, 1, null],
      [3, false, 1, null],
      [4, true, 8, 11],
    ]);
    expect(JSON.parse(cli('traces', '--db', db, '--json').stdout).traces[0].findings).toEqual({ error: 10, warning: 0, info: 0 });
  });
});
