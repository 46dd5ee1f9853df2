/**
 * The intake ledger (table files): every file taken ends in exactly one
 * state, written in the same transaction as the ingest's rows. And the
 * Ingestor's outcomes that store nothing: changed (size or mtime moved
 * while it was read) and incomplete (no end record yet).
 */
import { closeSync, fstatSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.js';
import { FileLedger, listFiles } from '../../src/store/files.js';
import type { OpenedFile } from '../../src/store/ingest.js';
import { churnSegments } from '../daemon/fixtures.js';
import { counts, ingestor, tempDir, writeSegments } from './helpers.js';

const rows = (db: ReturnType<typeof openStore>) =>
  db.prepare('SELECT name, status, reason, trace_id, segment, hash IS NOT NULL AS hashed, size, moved_to FROM files ORDER BY id').all();

function opened(path: string, name: string): OpenedFile {
  const fd = openSync(path, 'r');
  const st = fstatSync(fd);
  return { fd, path, name, stat: { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, dev: st.dev } };
}

describe('FileLedger.record', () => {
  it('upserts on name and hash; a hashless row of a file not yet read is replaced once it is; an ingested file seen again stays ingested', () => {
    const db = openStore(':memory:');
    const l = new FileLedger(db);
    l.record({ name: 'a.jsonl', status: 'unreadable', reason: 'EACCES' });
    l.record({ name: 'a.jsonl', status: 'unreadable', reason: 'EACCES again' });
    expect(rows(db)).toEqual([{ name: 'a.jsonl', status: 'unreadable', reason: 'EACCES again', trace_id: null, segment: null, hashed: 0, size: null, moved_to: null }]);
    l.record({ name: 'a.jsonl', status: 'ingested', hash: 'h1', traceId: 't', segment: 0, size: 10 });
    // The daemon's move, recorded without the hash: it lands on the read row.
    l.record({ name: 'a.jsonl', status: 'ingested', movedTo: '/drop/processed/a.jsonl' });
    l.record({ name: 'a.jsonl', status: 'duplicate', hash: 'h1' });
    expect(rows(db)).toEqual([{ name: 'a.jsonl', status: 'ingested', reason: null, trace_id: 't', segment: 0, hashed: 1, size: 10, moved_to: '/drop/processed/a.jsonl' }]);
    // A symlink under the same name later: its own row, kept when a file of that name is read.
    l.record({ name: 'a.jsonl', status: 'rejected', reason: 'a symbolic link' });
    l.record({ name: 'a.jsonl', status: 'duplicate', hash: 'h2', reason: 'same content as b.jsonl' });
    expect(listFiles(db).map((r) => [r.status, r.hash])).toEqual([
      ['duplicate', 'h2'],
      ['rejected', null],
      ['ingested', 'h1'],
    ]);
    expect(listFiles(db, { status: 'rejected' }).map((r) => r.reason)).toEqual(['a symbolic link']);
  });
});

describe('the ingest writes the ledger', () => {
  it('waiting, then ingested, a duplicate under another name, a quarantined file', async () => {
    const dir = tempDir('ledger');
    const [s0, s1] = writeSegments(dir, churnSegments('led/t', 2, 10));
    const copy = join(dir, 'copy.jsonl');
    writeFileSync(copy, churnSegments('led/t', 2, 10)[0]!);
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"type":"header"}\n');
    const db = openStore(':memory:');
    const ing = ingestor(db);
    expect((await ing.ingest(s1!)).status).toBe('waiting');
    expect(rows(db)).toEqual([{ name: 'seg1.jsonl', status: 'waiting', reason: 'waiting for segment 0 of trace led/t', trace_id: 'led/t', segment: 1, hashed: 1, size: expect.any(Number), moved_to: null }]);
    expect((await ing.ingest(s0!)).status).toBe('ingested');
    expect((await ing.ingest(s1!)).status).toBe('ingested');
    expect((await ing.ingest(copy)).status).toBe('duplicate');
    const q = await ing.ingest(bad);
    expect(q.status).toBe('quarantined');
    expect(db.prepare('SELECT name, status, reason, trace_id, segment FROM files ORDER BY id').all()).toEqual([
      { name: 'seg1.jsonl', status: 'ingested', reason: null, trace_id: 'led/t', segment: 1 },
      { name: 'seg0.jsonl', status: 'ingested', reason: null, trace_id: 'led/t', segment: 0 },
      { name: 'copy.jsonl', status: 'duplicate', reason: null, trace_id: 'led/t', segment: 0 },
      { name: 'bad.jsonl', status: 'quarantined', reason: q.reason!, trace_id: null, segment: null },
    ]);
  });
});

describe('outcomes that store nothing', () => {
  it('changed: the size or mtime differs at the end from the stat it was opened with', async () => {
    const dir = tempDir('changed');
    const [s0] = writeSegments(dir, churnSegments('chg/t', 1, 10));
    const db = openStore(':memory:');
    const f = opened(s0!, 'seg0.jsonl');
    try {
      const r = await ingestor(db).ingest({ ...f, stat: { ...f.stat, size: f.stat.size - 1 } });
      expect(r.status).toBe('changed');
      expect(counts(db)).toEqual({ traces: 0, segments: 0, findings: 0, locked_vm: 0, accounting: 0, segment_state: 0, files: 0 });
      // Read from the fd, as it is now: ingested.
      const ok = await ingestor(db).ingest(f, '/drop/processed/seg0.jsonl');
      expect(ok.status).toBe('ingested');
      expect(db.prepare('SELECT file_name, path FROM segments').get()).toEqual({ file_name: 'seg0.jsonl', path: '/drop/processed/seg0.jsonl' });
    } finally {
      closeSync(f.fd);
    }
  });

  it('incomplete: the header promises an end record the file does not have yet', async () => {
    const dir = tempDir('incomplete');
    const text = churnSegments('inc/t', 1, 10)[0]!.replace('"segment":0}', '"segment":0,"end_record":true}');
    const [s0] = writeSegments(dir, [text]);
    const db = openStore(':memory:');
    const r = await ingestor(db).ingest(s0!);
    expect(r.status).toBe('incomplete');
    expect(r.reason).toBe('seg0.jsonl: no end record yet: the writer has not finished');
    expect(counts(db)).toEqual({ traces: 0, segments: 0, findings: 0, locked_vm: 0, accounting: 0, segment_state: 0, files: 1 });
    expect(rows(db)).toEqual([{ name: 'seg0.jsonl', status: 'incomplete', reason: r.reason, trace_id: 'inc/t', segment: 0, hashed: 0, size: text.length, moved_to: null }]);
    // The writer finishes: the same name, now whole, replaces the note.
    writeFileSync(s0!, text + '{"type":"end","events":10}\n');
    expect((await ingestor(db).ingest(s0!)).status).toBe('ingested');
    expect(rows(db)).toEqual([{ name: 'seg0.jsonl', status: 'ingested', reason: null, trace_id: 'inc/t', segment: 0, hashed: 1, size: text.length + 27, moved_to: null }]);
  });
});
