/**
 * `pinledger check`: SQLite's integrity_check on a pinledger database and
 * a few facts (schema version, traces, segments, files by state), read
 * through a read-only connection. A file that is not a pinledger database
 * is a QueryError (exit 2); problems are returned, one per line.
 */
import Database from 'better-sqlite3';
import { SCHEMA_VERSION, type Db } from './db.js';
import { filesByStatus, type FileStatus } from './files.js';
import { QueryError } from './queries.js';

export interface CheckReport {
  file: string;
  schema_version: number;
  /** The newest schema this pinledger knows. */
  known_version: number;
  traces: number | null;
  segments: { ingested: number; quarantined: number } | null;
  /** Null before schema 5 (no ledger). */
  files: Record<FileStatus, number> | null;
  /** integrity_check's lines other than "ok", and any error met while reading the facts. */
  problems: string[];
  ok: boolean;
}

function open(file: string): Db {
  try {
    return new Database(file, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw new QueryError(`${file}: cannot open it as a database: ${(e as Error).message}`);
  }
}

export function checkStore(file: string): CheckReport {
  const db = open(file);
  try {
    let version: number;
    let tables: string[];
    try {
      version = db.pragma('user_version', { simple: true }) as number;
      tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
    } catch (e) {
      const code = String((e as { code?: unknown }).code ?? '');
      if (code === 'SQLITE_NOTADB') throw new QueryError(`${file} is not an SQLite database (or its header is corrupt)`);
      if (!code.startsWith('SQLITE_CORRUPT')) throw new QueryError(`${file}: cannot read it as a database: ${(e as Error).message}`);
      // The schema itself is damaged: nothing else can be read.
      return { file, schema_version: 0, known_version: SCHEMA_VERSION, traces: null, segments: null, files: null, problems: [`schema: ${(e as Error).message}`], ok: false };
    }
    if (!tables.includes('traces') || version === 0) throw new QueryError(`${file} is not a pinledger database (no traces table or no schema version)`);
    const problems: string[] = [];
    const fact = <T>(what: string, f: () => T): T | null => {
      try {
        return f();
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
        return null;
      }
    };
    for (const r of fact('integrity_check', () => db.pragma('integrity_check') as { integrity_check: string }[]) ?? []) {
      if (r.integrity_check !== 'ok') problems.push(r.integrity_check);
    }
    const traces = fact('traces', () => (db.prepare('SELECT count(*) AS n FROM traces').get() as { n: number }).n);
    const segments = fact('segments', () => {
      const r = db.prepare(`SELECT sum(status = 'ingested') AS ingested, sum(status = 'quarantined') AS quarantined FROM segments`).get() as { ingested: number | null; quarantined: number | null };
      return { ingested: r.ingested ?? 0, quarantined: r.quarantined ?? 0 };
    });
    const files = tables.includes('files') ? fact('files', () => filesByStatus(db)) : null;
    return { file, schema_version: version, known_version: SCHEMA_VERSION, traces, segments, files, problems, ok: problems.length === 0 };
  } finally {
    db.close();
  }
}

