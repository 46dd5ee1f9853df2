/**
 * `pinledger sql` bounded: a query that never ends is killed at --timeout
 * (exit 2), a long result stops at --max-rows (exit 0, a line on stderr),
 * a query that wants gigabytes fails in one line, and a killed query leaves
 * nothing pinned (the WAL checkpoints and truncates to 0 bytes after it).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.js';

const root = new URL('../..', import.meta.url).pathname;
let db = '';

function cli(...args: string[]) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), 'sql', ...args, '--db', db], { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 20000 });
  return { code: r.status, out: r.stdout, err: r.stderr, ms: Date.now() - t0 };
}

const FOREVER = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c';
const MILLION = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 1000000) SELECT x FROM c';

beforeAll(() => {
  db = join(mkdtempSync(join(tmpdir(), 'pinledger-sql-')), 'p.db');
  openStore(db).close();
});

describe('sql limits', () => {
  it('kills a query that never ends at --timeout: exit 2, one line, within the timeout + 1 s', () => {
    const r = cli(FOREVER, '--timeout', '1');
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe('pinledger: stopped after --timeout 1s: the query did not finish (raise --timeout, or narrow the query)\n');
    expect(r.ms).toBeLessThan(2000);
  });

  it('stops a million-row result at the default --max-rows 10,000, the rows printed exactly', () => {
    const r = cli(MILLION);
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines).toHaveLength(10_001);
    expect(lines[0]).toBe('x');
    expect(lines[1]).toBe('1');
    expect(lines[10_000]).toBe('10000');
    expect(r.err).toBe('pinledger: stopped at --max-rows 10000: the query has more rows (raise --max-rows)\n');
  });

  it('says in --json whether the rows were cut', () => {
    const cut = cli(MILLION, '--max-rows', '3', '--json');
    expect(cut.code).toBe(0);
    expect(JSON.parse(cut.out)).toEqual({ columns: ['x'], rows: [{ x: 1 }, { x: 2 }, { x: 3 }], truncated: true });
    expect(cut.err).toBe('pinledger: stopped at --max-rows 3: the query has more rows (raise --max-rows)\n');
    const whole = cli('SELECT 1 AS a', '--max-rows', '1', '--json');
    expect(whole.code).toBe(0);
    expect(JSON.parse(whole.out)).toEqual({ columns: ['a'], rows: [{ a: 1 }], truncated: false });
    expect(whole.err).toBe('');
  });

  it('a query that wants gigabytes fails in one line', () => {
    // Three thousand rows of 1 MB concatenated: 3 GB if nothing stopped it.
    const r = cli("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 3000) SELECT length(group_concat(printf('%.*c', 1000000, 'x'))) FROM c");
    expect(r.code).toBe(2);
    expect(r.err).toBe('pinledger: SQL error: string or blob too big\n');
    // A 500 MB blob printed as text: more than the child's memory allows.
    const b = cli('SELECT randomblob(500000000) AS z');
    expect(b.code).toBe(2);
    expect(b.err).toBe('pinledger: SQL error: the query needs more memory than the sql command allows (1024 MiB)\n');
  });

  it('a killed query leaves the WAL free: a checkpoint truncates it to 0 bytes', () => {
    const w = openStore(db);
    w.exec("CREATE TABLE IF NOT EXISTS scratch (x); INSERT INTO scratch SELECT 'row' FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 10000) SELECT x FROM c)");
    expect(statSync(db + '-wal').size).toBeGreaterThan(0);
    expect(cli(FOREVER, '--timeout', '1').code).toBe(2);
    expect(w.pragma('wal_checkpoint(TRUNCATE)')).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
    expect(statSync(db + '-wal').size).toBe(0);
    w.exec('DROP TABLE scratch');
    w.close();
  });

  it('escapes control characters in the table and refuses a --timeout below 1', () => {
    const r = cli("SELECT char(27) || '[2J' AS x");
    expect(r.code).toBe(0);
    expect(r.out).toBe('x\n\\x1b[2J\n');
    const bad = cli('SELECT 1', '--timeout', '0');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--timeout 0: expected a whole number of at least 1');
  });
});
