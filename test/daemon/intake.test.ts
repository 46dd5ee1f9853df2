/**
 * Intake (issue 15): 1,000 small files in under 10 s through the one sweep
 * timer; two files claiming one waiting segment both end in a state; an
 * in-place writer that pauses past --stable-ms is not taken before its end
 * record; the WAL is truncated after a long reader lets go.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { type DaemonProc, killLeftDaemons, churnSegments, drop, ledger, startDaemon, tinyTrace } from './fixtures.js';

afterEach(killLeftDaemons);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function start(...a: Parameters<typeof startDaemon>): DaemonProc {
  const d = startDaemon(...a);
  return d;
}
function fresh(): { watch: string; dbFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pinledger-intake-'));
  const watch = join(dir, 'incoming');
  mkdirSync(watch);
  return { watch, dbFile: join(dir, 'p.db') };
}

describe('intake', () => {
  it('1,000 small files dropped at once are all ingested in under 10 s', async () => {
    const { watch, dbFile } = fresh();
    const d = start(watch, dbFile);
    await d.waitFor((l) => l.msg === 'ready');
    const t0 = Date.now();
    for (let i = 0; i < 1000; i++) drop(watch, `f${i}.jsonl`, tinyTrace(`many/${i}`));
    while (readdirSync(join(watch, 'processed')).length < 1000 && Date.now() - t0 < 15000) await sleep(50);
    const took = Date.now() - t0;
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(took).toBeLessThan(10000);
    expect(d.logs.filter((l) => l.status === 'ingested')).toHaveLength(1000);
    const db = new Database(dbFile, { readonly: true });
    expect(db.prepare("SELECT status, count(*) AS n FROM files GROUP BY status").all()).toEqual([{ status: 'ingested', n: 1000 }]);
    expect(db.prepare("SELECT count(*) AS n FROM segments WHERE status = 'ingested'").get()).toEqual({ n: 1000 });
    db.close();
  }, 30000);

  it('two files claiming one waiting segment: the first is ingested when its predecessor lands, the other quarantined as already ingested', async () => {
    const { watch, dbFile } = fresh();
    const [s0, s1] = churnSegments('claim/t', 2, 50);
    const other = s1!.replace('"segment":1}', '"segment":1,"captured_by":"second copy"}');
    const d = start(watch, dbFile);
    await d.waitFor((l) => l.msg === 'ready');
    drop(watch, 'one.jsonl', s1!);
    await d.waitFor((l) => l.file === 'one.jsonl' && l.status === 'waiting');
    drop(watch, 'two.jsonl', other);
    await d.waitFor((l) => l.file === 'two.jsonl' && l.status === 'waiting');
    drop(watch, 'zero.jsonl', s0!);
    await d.waitFor((l) => l.file === 'two.jsonl' && l.status === 'quarantined');
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(ledger(dbFile).map((r) => [r.name, r.status, r.segment, r.reason])).toEqual([
      ['one.jsonl', 'ingested', 1, null],
      ['two.jsonl', 'quarantined', 1, 'two.jsonl:1: field segment: segment 1 of trace claim/t was already ingested from another file'],
      ['zero.jsonl', 'ingested', 0, null],
    ]);
    expect(readdirSync(join(watch, 'quarantine')).sort()).toEqual(['two.jsonl', 'two.jsonl.reason.txt']);
  }, 30000);

  it('an in-place writer pausing longer than --stable-ms with an end_record header is not taken before its end record', async () => {
    const { watch, dbFile } = fresh();
    const [seg] = churnSegments('inplace/t', 1, 40);
    const lines = seg!.trim().split('\n');
    const header = lines[0]!.replace('"segment":0}', '"segment":0,"end_record":true}');
    const d = start(watch, dbFile);
    await d.waitFor((l) => l.msg === 'ready');
    const file = join(watch, 'slow.jsonl');
    writeFileSync(file, [header, ...lines.slice(1, 21)].join('\n') + '\n');
    await d.waitFor((l) => l.file === 'slow.jsonl' && l.status === 'incomplete');
    await sleep(600);
    appendFileSync(file, lines.slice(21).join('\n') + '\n' + JSON.stringify({ type: 'end', events: 40 }) + '\n');
    await d.waitFor((l) => l.file === 'slow.jsonl' && l.status === 'ingested');
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    const db = new Database(dbFile, { readonly: true });
    expect(db.prepare('SELECT trace_id, segment, status, events, first_seq, last_seq FROM segments').all()).toEqual([{ trace_id: 'inplace/t', segment: 0, status: 'ingested', events: 40, first_seq: 1, last_seq: 40 }]);
    db.close();
    expect(ledger(dbFile).map((r) => [r.name, r.status])).toEqual([['slow.jsonl', 'ingested']]);
    expect(d.logs.find((l) => l.status === 'incomplete')?.reason).toBe('slow.jsonl: no end record yet: the writer has not finished');
  }, 30000);

  it('after a reader held a transaction across 20 ingests and let go, the WAL is truncated', async () => {
    const { watch, dbFile } = fresh();
    const d = start(watch, dbFile);
    await d.waitFor((l) => l.msg === 'ready');
    drop(watch, 'first.jsonl', churnSegments('wal/first', 1, 200)[0]!);
    await d.waitFor((l) => l.file === 'first.jsonl' && l.status === 'ingested');
    const reader = new Database(dbFile, { readonly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM segments').get();
    for (let i = 0; i < 20; i++) {
      drop(watch, `w${i}.jsonl`, churnSegments(`wal/${i}`, 1, 2000)[0]!);
      await d.waitFor((l) => l.file === `w${i}.jsonl` && l.status === 'ingested');
    }
    const grown = statSync(`${dbFile}-wal`).size;
    expect(grown).toBeGreaterThan(1 << 20);
    expect(d.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('checkpoint incomplete'))).toBe(true);
    reader.exec('COMMIT');
    reader.close();
    drop(watch, 'last.jsonl', tinyTrace('wal/last'));
    await d.waitFor((l) => l.file === 'last.jsonl' && l.status === 'ingested');
    await sleep(200);
    expect(statSync(`${dbFile}-wal`).size).toBe(0);
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  }, 60000);
});
