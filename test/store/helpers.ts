/** What the store tests share: an Ingestor as the daemon builds one, trace files, and a database dumped table by table. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CAPTURED_DESIGN, driversFor } from '../../src/replay/designs.js';
import type { Db } from '../../src/store/db.js';
import { Ingestor, type IngestOptions } from '../../src/store/ingest.js';
import type { IngestLimits } from '../../src/store/limits.js';

export function ingestor(db: Db, limits: Partial<IngestLimits> = {}, extra: Partial<IngestOptions> = {}): Ingestor {
  return new Ingestor(db, { drivers: (h) => driversFor('auto', h), capturedDesign: CAPTURED_DESIGN, limits, ...extra });
}

export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `pinledger-store-${tag}-`));
}

/** Writes each text as `<prefix><i>.jsonl` in `dir`; the paths in order. */
export function writeSegments(dir: string, texts: string[], prefix = 'seg'): string[] {
  return texts.map((t, i) => {
    const f = join(dir, `${prefix}${i}.jsonl`);
    writeFileSync(f, t);
    return f;
  });
}

/** Columns that say when, not what: left out of comparisons. */
const TIME_COLUMNS = new Set(['first_seen', 'updated_at', 'started_at', 'finished_at', 'duration_ms']);

/** Every table's rows (in rowid or key order), time columns left out. */
export function dump(db: Db | Database.Database): Record<string, Record<string, unknown>[]> {
  const out: Record<string, Record<string, unknown>[]> = {};
  const tables = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string; sql: string }[];
  for (const t of tables) {
    const cols = (db.prepare(`SELECT name FROM pragma_table_info(?)`).all(t.name) as { name: string }[]).map((c) => c.name);
    const order = /WITHOUT ROWID/i.test(t.sql) ? cols.map((_, i) => i + 1).join(', ') : 'rowid';
    const rows = db.prepare(`SELECT * FROM "${t.name}" ORDER BY ${order}`).all() as Record<string, unknown>[];
    out[t.name] = rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !TIME_COLUMNS.has(k))));
  }
  return out;
}

/** Row counts of the tables an ingest writes. */
export function counts(db: Db): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of ['traces', 'segments', 'findings', 'locked_vm', 'accounting', 'segment_state', 'files']) out[t] = (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
  return out;
}
