/**
 * The wedge of issue 15: one failed statement after BEGIN used to leave the
 * transaction open, and every later file failed with "cannot start a
 * transaction within a transaction". Now a failing statement rolls back,
 * no transaction stays open, and the next file ingests. A read-only
 * database is a fatal StoreFault; a bug in the replay quarantines the file
 * ("internal error: ..."), never a crash loop.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { CAPTURED_DESIGN } from '../../src/replay/designs.js';
import { openStore } from '../../src/store/db.js';
import { Ingestor } from '../../src/store/ingest.js';
import { StoreFault } from '../../src/store/store-error.js';
import type { IommuDriver } from '../../src/model/vfio/driver.js';
import { churnSegments } from '../daemon/fixtures.js';
import { faultyDb } from './faulty-db.js';
import { counts, ingestor, tempDir, writeSegments } from './helpers.js';

describe('a statement failing mid-ingest', () => {
  it('rolls back, leaves no transaction, and the next file ingests', async () => {
    const dir = tempDir('wedge');
    const [a] = writeSegments(dir, churnSegments('wedge/a', 1, 40), 'a');
    const [b] = writeSegments(dir, churnSegments('wedge/b', 1, 40), 'b');
    const db = openStore(':memory:');
    // Statement 30: well inside the replay's writes (locked_vm rows).
    const f = faultyDb(db, 30, 'SQLITE_FULL');
    const ing = ingestor(f.db);
    const e = await ing.ingest(a!).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StoreFault);
    expect((e as StoreFault).kind).toBe('transient');
    expect((e as StoreFault).code).toBe('SQLITE_FULL');
    expect((e as StoreFault).message).toBe('database full: injected fault at store statement 30 (run)');
    expect(db.inTransaction).toBe(false);
    expect(counts(db)).toEqual({ traces: 0, segments: 0, findings: 0, locked_vm: 0, accounting: 0, segment_state: 0, files: 0 });
    const r = await ing.ingest(b!);
    expect(r.status).toBe('ingested');
    expect(r.traceId).toBe('wedge/b');
    // And the failed one, taken again.
    expect((await ing.ingest(a!)).status).toBe('ingested');
    expect(db.prepare('SELECT trace_id FROM traces ORDER BY trace_id').all()).toEqual([{ trace_id: 'wedge/a' }, { trace_id: 'wedge/b' }]);
    expect(db.prepare('SELECT name, status FROM files ORDER BY id').all()).toEqual([
      { name: 'b0.jsonl', status: 'ingested' },
      { name: 'a0.jsonl', status: 'ingested' },
    ]);
  });
});

describe('a read-only database', () => {
  it('is a fatal StoreFault, and no transaction stays open', async () => {
    const dir = tempDir('readonly');
    const file = `${dir}/p.db`;
    openStore(file).close();
    const [a] = writeSegments(dir, churnSegments('ro/a', 1, 20));
    const db = new Database(file, { readonly: true });
    const e = await ingestor(db).ingest(a!).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StoreFault);
    expect((e as StoreFault).kind).toBe('fatal');
    expect((e as StoreFault).code).toBe('SQLITE_READONLY');
    expect((e as StoreFault).message).toBe('database read-only: attempt to write a readonly database');
    expect(db.inTransaction).toBe(false);
  });
});

describe('a bug in the replay', () => {
  it('quarantines the file with "internal error: ...", in its own transaction', async () => {
    const dir = tempDir('internal');
    const [a] = writeSegments(dir, churnSegments('bug/a', 1, 20));
    const db = openStore(':memory:');
    const broken: IommuDriver = {
      name: 'upstream',
      checkExtension: () => 1,
      open: () => {
        throw new Error('broken driver\nsecond line');
      },
    };
    const ing = new Ingestor(db, { drivers: () => new Map([['upstream', broken]]), capturedDesign: CAPTURED_DESIGN });
    const r = await ing.ingest(a!);
    expect(r.status).toBe('quarantined');
    expect(r.reason).toBe('internal error: broken driver second line');
    expect(db.inTransaction).toBe(false);
    expect(counts(db)).toEqual({ traces: 0, segments: 1, findings: 0, locked_vm: 0, accounting: 0, segment_state: 0, files: 1 });
    expect(db.prepare('SELECT trace_id, segment, file_name, status, error FROM segments').get()).toEqual({
      trace_id: 'bug/a',
      segment: 0,
      file_name: 'seg0.jsonl',
      status: 'quarantined',
      error: 'internal error: broken driver second line',
    });
    expect(db.prepare('SELECT name, status, reason, trace_id, segment FROM files').get()).toEqual({
      name: 'seg0.jsonl',
      status: 'quarantined',
      reason: 'internal error: broken driver second line',
      trace_id: 'bug/a',
      segment: 0,
    });
  });
});
