/**
 * A gzip bomb in the drop folder (issue 15): 10 MB that inflate to 10 GiB
 * of blank lines. A SIGTERM while the daemon inflates it ends the daemon
 * within a second, exit 0, nothing stored and the file left in place; with
 * --max-file-size the bomb is quarantined, naming the limit, and the next
 * file is ingested.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { killLeftDaemons, drop, ledger, startDaemon } from './fixtures.js';

const sample = (n: string) => readFileSync(new URL(`../../traces/samples/${n}`, import.meta.url), 'utf8');
afterEach(killLeftDaemons);

/** A header, then `members` gzip members of 64 MiB of newlines each (a multi-member gzip is one stream to gunzip). */
function bomb(file: string, members: number): void {
  const header = gzipSync(JSON.stringify({ type: 'header', format: 'vfio-trace', version: 1, trace_id: 'bomb', segment: 0 }) + '\n');
  const member = gzipSync(Buffer.alloc(64 << 20, 10), { level: 9 });
  writeFileSync(file, Buffer.concat([header, ...Array.from({ length: members }, () => member)]));
}

function segments(dbFile: string): number {
  const db = new Database(dbFile, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM segments').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('a gzip bomb in the drop folder', () => {
  it('SIGTERM while it inflates: exit 0 within 1 s, nothing stored, the file still there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-bomb-'));
    const watch = join(dir, 'incoming');
    mkdirSync(watch);
    bomb(join(dir, 'bomb.jsonl.gz'), 160);
    const dbFile = join(dir, 'p.db');
    const d = startDaemon(watch, dbFile);
    await d.waitFor((l) => l.msg === 'ready');
    // Renamed in, as a capture tool drops a finished file.
    copyFileSync(join(dir, 'bomb.jsonl.gz'), join(watch, 'bomb.jsonl.gz.tmp'));
    renameSync(join(watch, 'bomb.jsonl.gz.tmp'), join(watch, 'bomb.jsonl.gz'));
    // Taken after --stable-ms (150 ms); 10 GiB take far longer than 3 s to inflate.
    await new Promise((r) => setTimeout(r, 3000));
    expect(d.logs.filter((l) => l.file === 'bomb.jsonl.gz')).toEqual([]);
    const t0 = Date.now();
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(d.logs.find((l) => l.file === 'bomb.jsonl.gz')).toMatchObject({ status: 'aborted' });
    expect(readdirSync(watch).sort()).toEqual(['bomb.jsonl.gz', 'processed', 'quarantine']);
    expect(segments(dbFile)).toBe(0);
  }, 30000);

  it('over --max-file-size: quarantined naming the limit, and the next file is ingested', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-bomb-'));
    const watch = join(dir, 'incoming');
    mkdirSync(watch);
    bomb(join(watch, 'bomb.jsonl.gz'), 4);
    const dbFile = join(dir, 'p.db');
    const d = startDaemon(watch, dbFile, ['--max-file-size', '16M']);
    const q = await d.waitFor((l) => l.file === 'bomb.jsonl.gz' && l.status === 'quarantined');
    expect(q.reason).toMatch(/^bomb\.jsonl\.gz:\d+: larger than the limit of 16777216 bytes uncompressed \(--max-file-size\)$/);
    drop(watch, 'after.jsonl', sample('vm-boot.jsonl'));
    await d.waitFor((l) => l.file === 'after.jsonl' && l.status === 'ingested');
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(ledger(dbFile).map((r) => [r.name, r.status])).toEqual([
      ['after.jsonl', 'ingested'],
      ['bomb.jsonl.gz', 'quarantined'],
    ]);
  }, 30000);
});
