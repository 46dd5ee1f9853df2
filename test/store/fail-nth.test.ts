/**
 * The fault at every step, after the kernel's iommufd fail_nth selftests:
 * for every N from 1 to the number of store statements a clean ingest of a
 * 3-segment trace with findings runs, the Nth statement fails (SQLITE_IOERR,
 * then SQLITE_BUSY); the ingest stops there, as the daemon would, leaving
 * no transaction open; then a new Ingestor on the same database (a
 * restarted daemon) takes the same files again, and the database must equal
 * one clean ingest, row for row, in every table (time columns aside).
 * Every fault is transient but one: a failing ROLLBACK is fatal (and the
 * helper tries it once more, so no transaction is left open even then).
 * Twice: the segments in order, then out of order (one waits) with a bad
 * file after them (its quarantine is a transaction of its own).
 */
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Db } from '../../src/store/db.js';
import { StoreFault } from '../../src/store/store-error.js';
import { churnSegments } from '../daemon/fixtures.js';
import { faultyDb } from './faulty-db.js';
import { dump, ingestor, tempDir, writeSegments } from './helpers.js';

const dir = tempDir('fail-nth');
// Small enough for seconds: 20 events a segment, and the process's limit cut from 400 MiB to 16 MiB so
// that most maps are refused (ACCT_LIMIT findings in every segment: 2 rows of their own, the rest
// folded into one aggregate row that later segments grow).
const texts = churnSegments('fail/nth', 3, 20);
texts[0] = texts[0]!.replace('"memlock_limit":"0x19000000"', '"memlock_limit":"0x1000000"');
const [s0, s1, s2] = writeSegments(dir, texts) as [string, string, string];
const bad = join(dir, 'bad.jsonl');
writeFileSync(bad, texts[2]!.replace('"segment":2', '"segment":3').replace(/"seq":61,/, '"seq":"sixty-one",'));
const LIMITS = { maxFindingsPerCode: 2 };

const SEQUENCES: { name: string; files: string[]; statuses: string[]; statements: number }[] = [
  { name: 'three segments in order', files: [s0, s1, s2], statuses: ['ingested', 'ingested', 'ingested'], statements: 55 },
  { name: 'out of order, then a bad file', files: [s0, s2, s1, s2, bad], statuses: ['ingested', 'waiting', 'ingested', 'ingested', 'quarantined'], statements: 73 },
];

async function ingestAll(db: Db, files: string[]): Promise<string[]> {
  const ing = ingestor(db, LIMITS);
  const statuses: string[] = [];
  for (const f of files) statuses.push((await ing.ingest(f)).status);
  return statuses;
}

for (const seq of SEQUENCES) {
  describe(`a store fault at every statement: ${seq.name}`, () => {
    let statements = 0;
    let want: ReturnType<typeof dump>;
    beforeAll(async () => {
      const db = openStore(':memory:');
      const f = faultyDb(db, 0, 'SQLITE_IOERR');
      expect(await ingestAll(f.db, seq.files)).toEqual(seq.statuses);
      statements = f.count();
      want = dump(db);
    });

    it('the clean ingest: findings, some folded, and the ledger', () => {
      expect(want.findings!.map((r) => [r.segment, r.code, r.aggregate, r.occurrences, r.seq, r.last_seq])).toEqual([
        [0, 'ACCT_LIMIT', 0, 1, 14, null],
        [0, 'ACCT_LIMIT', 0, 1, 15, null],
        [0, 'ACCT_LIMIT', 1, 45, 16, 60],
      ]);
      expect(want.traces!.map((r) => [r.trace_id, r.last_segment, r.events, r.findings_warning])).toEqual([['fail/nth', 2, 60, 47]]);
      const names = [...new Set(seq.files.map((f) => f.slice(dir.length + 1)))];
      expect(want.files!.map((r) => [r.name, r.status])).toEqual(names.map((n) => [n, n === 'bad.jsonl' ? 'quarantined' : 'ingested']));
      expect(statements).toBe(seq.statements);
    });

    for (const code of ['SQLITE_IOERR_WRITE', 'SQLITE_BUSY']) {
      it(`${code}: for every N the ingest fails cleanly and a restart ends in one clean ingest`, async () => {
        for (let n = 1; n <= statements; n++) {
          const db = openStore(':memory:');
          const f = faultyDb(db, n, code);
          const ing = ingestor(f.db, LIMITS);
          let fault: unknown;
          for (const file of seq.files) {
            try {
              await ing.ingest(file);
            } catch (e) {
              fault = e;
              break;
            }
          }
          expect(f.fired(), `N=${n}`).toBe(true);
          expect(fault, `N=${n}`).toBeInstanceOf(StoreFault);
          // A failing ROLLBACK (of the bad file's replay, before its quarantine) is fatal: the daemon stops.
          expect((fault as StoreFault).kind, `N=${n}`).toBe(f.firedOn() === 'ROLLBACK' ? 'fatal' : 'transient');
          expect(db.inTransaction, `N=${n}`).toBe(false);
          await ingestAll(db, seq.files);
          expect(db.inTransaction, `N=${n}`).toBe(false);
          const got = dump(db);
          if (JSON.stringify(got) !== JSON.stringify(want)) expect(got, `N=${n}`).toEqual(want);
          db.close();
        }
      }, 60_000);
    }
  });
}
