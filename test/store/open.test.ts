/**
 * openStore: WAL with journal_size_limit (the WAL shrinks back after a
 * checkpoint), and refusals that leave the file as it was.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { JOURNAL_SIZE_LIMIT, openStore, SCHEMA_VERSION } from '../../src/store/db.js';
import { StoreFault } from '../../src/store/store-error.js';
import { tempDir } from './helpers.js';

describe('openStore', () => {
  it('WAL, synchronous FULL, journal_size_limit 64 MiB, the newest schema', () => {
    const db = openStore(join(tempDir('open'), 'p.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
    expect(JOURNAL_SIZE_LIMIT).toBe(64 * 1024 * 1024);
    expect(db.pragma('journal_size_limit', { simple: true })).toBe(JOURNAL_SIZE_LIMIT);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(5);
  });

  it('upgrades a version 4 database in place, keeping its rows', () => {
    const file = join(tempDir('open-v4'), 'p.db');
    const old = new Database(file);
    for (const v of [1, 2, 3, 4]) {
      const name = ['001_init.sql', '002_queries.sql', '003_memlock_answer.sql', '004_mlock_cause.sql'][v - 1]!;
      old.exec(readFileSync(new URL(`../../schema/migrations/${name}`, import.meta.url), 'utf8'));
      old.pragma(`user_version = ${v}`);
    }
    old.prepare(`INSERT INTO traces (trace_id, backends, last_segment, last_seq, events, first_seen, updated_at) VALUES ('old', '["upstream"]', 0, 9, 9, 1, 1)`).run();
    old.close();
    const db = openStore(file);
    expect(db.prepare('SELECT trace_id, host, topology, identity_recorded FROM traces').all()).toEqual([{ trace_id: 'old', host: null, topology: null, identity_recorded: 0 }]);
    expect(db.prepare('SELECT count(*) AS n FROM files').get()).toEqual({ n: 0 });
  });

  it('a file that is not a database: refused, its bytes unchanged', () => {
    const file = join(tempDir('open-bad'), 'p.db');
    writeFileSync(file, Buffer.alloc(8192, 0x41));
    const before = readFileSync(file);
    expect(() => openStore(file)).toThrow(StoreFault);
    expect(readFileSync(file).equals(before)).toBe(true);
  });
});
