/**
 * Query speed on a large store: 1000 traces and 1,000,000 findings written
 * straight into a fresh database, then each audit query timed.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openReader, openStore } from '../store/db.js';
import { accounting, listFindings, listTraces, readOnlySql } from '../store/queries.js';

const CODES = ['ACCT_LIMIT', 'ACCT_DOUBLE_CHARGE', 'PIN_LEAK', 'RET_MISMATCH', 'ACCT_SHARED_FRAMES', 'DESIGN_DIVERGENCE'];
const SEVERITY: Record<string, string> = { ACCT_LIMIT: 'warning', ACCT_DOUBLE_CHARGE: 'error', PIN_LEAK: 'error', RET_MISMATCH: 'error', ACCT_SHARED_FRAMES: 'warning', DESIGN_DIVERGENCE: 'info' };
const BACKENDS = ['upstream', 'rfc-v5', 'iommufd-compat'];

export function buildLargeStore(traces = 1000, findings = 1_000_000): string {
  const file = join(mkdtempSync(join(tmpdir(), 'pinledger-qbench-')), 'big.db');
  const db = openStore(file);
  const now = Date.now();
  const insTrace = db.prepare(
    `INSERT INTO traces (trace_id, backends, last_segment, last_seq, events, first_seen, updated_at, findings_error, findings_warning, findings_info)
     VALUES (?, ?, 0, 100000, 100000, ?, ?, 0, 0, 0)`,
  );
  const insSeg = db.prepare(
    `INSERT INTO segments (trace_id, segment, file_name, content_hash, status, events, first_seq, last_seq, started_at, finished_at, duration_ms)
     VALUES (?, 0, ?, ?, 'ingested', 100000, 1, 100000, ?, ?, 10)`,
  );
  const insAcct = db.prepare(
    `INSERT INTO accounting (trace_id, backend, pid, peak_locked_vm, final_locked_vm, memlock_required, peak_direct, peak_pins, peak_shared, peak_seq)
     VALUES (?, ?, ?, ?, 0, ?, ?, 0, 0, 5)`,
  );
  const insTl = db.prepare('INSERT INTO locked_vm (trace_id, backend, pid, seq, locked_vm) VALUES (?, ?, ?, ?, ?)');
  const insF = db.prepare(
    `INSERT INTO findings (trace_id, segment, backend, code, severity, seq, message, details, event, context) VALUES (?, 0, ?, ?, ?, ?, ?, '{}', '{}', '[]')`,
  );
  db.transaction(() => {
    for (let t = 0; t < traces; t++) {
      const id = `host${t % 50}/vm-${t}`;
      const when = now - (traces - t) * 60_000;
      insTrace.run(id, JSON.stringify(BACKENDS), when, when);
      insSeg.run(id, `vm-${t}.jsonl`, `hash-${t}`, when, when);
      for (const b of BACKENDS) {
        insAcct.run(id, b, 1000 + t, 262144 + t, (262144 + t) * 4096, 262144 + t);
        for (let k = 0; k < 20; k++) insTl.run(id, b, 1000 + t, k * 5000 + 1, k * 13107);
      }
    }
    const per = findings / traces;
    for (let i = 0; i < findings; i++) {
      const t = Math.floor(i / per);
      const code = CODES[i % CODES.length]!;
      insF.run(`host${t % 50}/vm-${t}`, BACKENDS[i % 3]!, code, SEVERITY[code]!, i % 100000, `finding ${i}`);
    }
  })();
  db.close();
  return file;
}

export function timeQueries(file: string): { query: string; ms: number; rows: number }[] {
  const db = openReader(file);
  const out: { query: string; ms: number; rows: number }[] = [];
  const time = (query: string, f: () => unknown[]) => {
    const t0 = process.hrtime.bigint();
    const rows = f().length;
    out.push({ query, ms: Number(process.hrtime.bigint() - t0) / 1e6, rows });
  };
  const since = Date.now() - 30 * 60_000;
  time('traces', () => listTraces(db));
  time('traces --since 30m', () => listTraces(db, { since }));
  time('traces --status quarantined', () => listTraces(db, { status: 'quarantined' }));
  time('findings --limit 100', () => listFindings(db, { limit: 100 }));
  time('findings --severity error', () => listFindings(db, { severity: 'error' }));
  time('findings --code PIN_LEAK --backend rfc-v5', () => listFindings(db, { code: 'PIN_LEAK', backend: 'rfc-v5' }));
  time('findings --trace T --severity warning', () => listFindings(db, { trace: 'host7/vm-507', severity: 'warning', limit: 1000 }));
  time('findings --since 30m', () => listFindings(db, { since }));
  time('accounting --trace T', () => accounting(db, 'host7/vm-507'));
  time('sql count(*) by code', () => readOnlySql(db, 'SELECT code, count(*) FROM findings GROUP BY code').rows);
  db.close();
  return out;
}
