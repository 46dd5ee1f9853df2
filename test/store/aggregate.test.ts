/**
 * Findings past --max-findings-per-code (default 1,000 per trace, design
 * and code) are folded into one aggregate row: 800,000 findings of one code
 * take 1,000 rows + 1, the aggregate row counting the other 799,000, from
 * the first folded seq to the last. The trace's severity counts stay the
 * true totals; findingGroups() and `findings` show the count.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.js';
import { findingGroups, listFindings } from '../../src/store/queries.js';
import { ingestor, tempDir } from './helpers.js';

/** `n` VFIO_GET_API_VERSION calls that observed 1 where the model returns 0: one RET_MISMATCH each. */
function mismatches(traceId: string, segment: number, firstSeq: number, n: number): string {
  const lines = [JSON.stringify({ type: 'header', format: 'vfio-trace', version: 1, trace_id: traceId, segment })];
  let seq = firstSeq;
  if (segment === 0) {
    lines.push(JSON.stringify({ type: 'process', seq: seq++, pid: 7, op: 'start', memlock_limit: 'unlimited' }));
    lines.push(JSON.stringify({ type: 'open', seq: seq++, pid: 7, fd: 3, path: '/dev/vfio/vfio' }));
  }
  for (let i = 0; i < n; i++) lines.push(`{"type":"ioctl","seq":${seq++},"pid":7,"fd":3,"cmd":"VFIO_GET_API_VERSION","ret":1}`);
  return lines.join('\n') + '\n';
}

describe('findings folded past the limit', () => {
  it('800,000 findings of one code: 1,000 rows + 1, occurrences exact, totals true', async () => {
    const dir = tempDir('aggregate');
    const file = join(dir, 'big.jsonl');
    writeFileSync(file, mismatches('agg/big', 0, 1, 800_000));
    const db = openStore(join(dir, 'p.db'));
    const r = await ingestor(db).ingest(file);
    expect(r.status).toBe('ingested');
    expect(r.findings).toBe(800_000);
    expect(db.prepare('SELECT aggregate, count(*) AS n, sum(occurrences) AS occ, min(seq) AS lo, max(coalesce(last_seq, seq)) AS hi FROM findings GROUP BY aggregate ORDER BY aggregate').all()).toEqual([
      { aggregate: 0, n: 1000, occ: 1000, lo: 3, hi: 1002 },
      { aggregate: 1, n: 1, occ: 799_000, lo: 1003, hi: 800_002 },
    ]);
    expect(db.prepare('SELECT findings_error, findings_warning, findings_info FROM traces').get()).toEqual({ findings_error: 800_000, findings_warning: 0, findings_info: 0 });
    const groups = findingGroups(db, 'agg/big');
    expect(groups.map((g) => [g.code, g.count, g.first_seq, g.last_seq])).toEqual([['RET_MISMATCH', 800_000, 3, 800_002]]);
    const agg = listFindings(db, { trace: 'agg/big', limit: 2000 }).filter((f) => f.aggregate);
    expect(agg.map((f) => [f.code, f.occurrences, f.seq, f.last_seq])).toEqual([['RET_MISMATCH', 799_000, 1003, 800_002]]);
  }, 60_000);

  it('the aggregate row grows with later segments; a lower limit folds sooner', async () => {
    const dir = tempDir('aggregate-segments');
    const files = [mismatches('agg/seg', 0, 1, 10), mismatches('agg/seg', 1, 13, 10)].map((t, i) => {
      const f = join(dir, `s${i}.jsonl`);
      writeFileSync(f, t);
      return f;
    });
    const db = openStore(':memory:');
    const ing = ingestor(db, { maxFindingsPerCode: 4 });
    for (const f of files) expect((await ing.ingest(f)).status).toBe('ingested');
    expect(db.prepare('SELECT segment, seq, aggregate, occurrences, last_seq FROM findings ORDER BY id').all()).toEqual([
      { segment: 0, seq: 3, aggregate: 0, occurrences: 1, last_seq: null },
      { segment: 0, seq: 4, aggregate: 0, occurrences: 1, last_seq: null },
      { segment: 0, seq: 5, aggregate: 0, occurrences: 1, last_seq: null },
      { segment: 0, seq: 6, aggregate: 0, occurrences: 1, last_seq: null },
      { segment: 0, seq: 7, aggregate: 1, occurrences: 16, last_seq: 22 },
    ]);
    expect(db.prepare('SELECT findings_error FROM traces').get()).toEqual({ findings_error: 20 });
  });
});
