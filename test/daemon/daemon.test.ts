import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../../src/model/backends/index.js';
import { replayFiles } from '../../src/replay/replay-files.js';
import { type DaemonProc, killLeftDaemons, churnSegments, drop, startDaemon } from './fixtures.js';

const sample = (n: string) => readFileSync(new URL(`../../traces/samples/${n}`, import.meta.url), 'utf8');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
afterEach(killLeftDaemons);

function start(watch: string, db: string): DaemonProc {
  const d = startDaemon(watch, db);
  return d;
}

/** The mixed sample cut into two segments after line `cut` (the second without topology). */
function twoSegments(): [string, string] {
  const lines = sample('mixed-direct-mdev.jsonl').trim().split('\n');
  const header = JSON.parse(lines[0]!) as Record<string, unknown>;
  const cut = 11;
  const h1: Record<string, unknown> = { ...header, segment: 1 };
  delete h1.topology;
  return [[lines[0], ...lines.slice(1, cut)].join('\n') + '\n', [JSON.stringify(h1), ...lines.slice(cut)].join('\n') + '\n'];
}

describe('pinledger daemon', () => {
  it('takes a trace dropped in pieces: out of order, twice, slowly, and a bad one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-daemon-'));
    const watch = join(dir, 'incoming');
    const dbFile = join(dir, 'p.db');
    const d = start(watch, dbFile);
    await d.waitFor((l) => l.msg === 'ready');
    const [s0, s1] = twoSegments();

    drop(watch, 'mixed-1.jsonl', s1);
    await d.waitFor((l) => l.file === 'mixed-1.jsonl' && l.status === 'waiting');
    drop(watch, 'mixed-0.jsonl', s0);
    await d.waitFor((l) => l.file === 'mixed-1.jsonl' && l.status === 'ingested');
    drop(watch, 'mixed-0-again.jsonl', s0);
    await d.waitFor((l) => l.file === 'mixed-0-again.jsonl' && l.status === 'duplicate');

    // Written slowly, in place, without a temporary name.
    const boot = sample('vm-boot.jsonl');
    const slow = join(watch, 'slow.jsonl');
    for (let i = 0; i < boot.length; i += 700) {
      appendFileSync(slow, boot.slice(i, i + 700));
      await sleep(40);
    }
    await d.waitFor((l) => l.file === 'slow.jsonl' && l.status === 'ingested');
    drop(watch, 'bad.jsonl', sample('invalid-seq.jsonl'));
    await d.waitFor((l) => l.file === 'bad.jsonl' && l.status === 'quarantined');

    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);

    const db = new Database(dbFile, { readonly: true });
    expect(db.prepare('SELECT trace_id, segment, status, file_name FROM segments ORDER BY id').all()).toEqual([
      { trace_id: 'host42/vgpu-mixed', segment: 0, status: 'ingested', file_name: 'mixed-0.jsonl' },
      { trace_id: 'host42/vgpu-mixed', segment: 1, status: 'ingested', file_name: 'mixed-1.jsonl' },
      { trace_id: 'host42/vm-boot', segment: 0, status: 'ingested', file_name: 'slow.jsonl' },
      { trace_id: 'host42/bad', segment: 0, status: 'quarantined', file_name: 'bad.jsonl' },
    ]);
    // The two segments give exactly what one replay of the whole trace gives.
    const [whole] = await replayFiles([new URL('../../traces/samples/mixed-direct-mdev.jsonl', import.meta.url).pathname], new Map(Object.entries(BACKENDS)));
    for (const [name, r] of whole!.replayers) {
      const stored = db.prepare('SELECT seq, code FROM findings WHERE trace_id = ? AND backend = ? ORDER BY id').all('host42/vgpu-mixed', name);
      expect(stored).toEqual(r.findings.map((f) => ({ seq: f.seq, code: f.code })));
      const acct = db.prepare('SELECT peak_locked_vm, final_locked_vm, memlock_required FROM accounting WHERE trace_id = ? AND backend = ?').get('host42/vgpu-mixed', name);
      const m = r.memlockRequired().get(4242)!;
      expect(acct).toEqual({ peak_locked_vm: r.lockedVm().peak.get(4242), final_locked_vm: 0, memlock_required: Number(m.bytes) });
    }
    // The locked_vm timeline holds change points only.
    const tl = db.prepare("SELECT seq, locked_vm FROM locked_vm WHERE trace_id = 'host42/vgpu-mixed' AND backend = 'rfc-v5' ORDER BY seq").all();
    expect(tl).toEqual([
      { seq: 1, locked_vm: 0 },
      { seq: 8, locked_vm: 262144 },
      { seq: 10, locked_vm: 262656 },
      { seq: 11, locked_vm: 262660 },
      { seq: 12, locked_vm: 262656 },
      { seq: 13, locked_vm: 262144 },
      { seq: 15, locked_vm: 0 },
    ]);
    const event = db.prepare("SELECT event FROM findings WHERE code = 'ACCT_DOUBLE_CHARGE' ORDER BY id LIMIT 1").get() as { event: string };
    expect(JSON.parse(event.event)).toMatchObject({ type: 'pin', seq: 10, npage: 512 });
    db.close();

    expect(readdirSync(join(watch, 'processed')).sort()).toEqual(['mixed-0-again.jsonl', 'mixed-0.jsonl', 'mixed-1.jsonl', 'slow.jsonl']);
    expect(readdirSync(join(watch, 'quarantine')).sort()).toEqual(['bad.jsonl', 'bad.jsonl.reason.txt']);
    expect(readFileSync(join(watch, 'quarantine', 'bad.jsonl.reason.txt'), 'utf8')).toMatch(/bad\.jsonl:5: field seq: seq 3 does not increase/);
    expect(readdirSync(watch).filter((f) => f.endsWith('.jsonl'))).toEqual([]);
  });

  it('takes the files already in the folder at start, and answers audit reads while ingesting a large file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-daemon-'));
    const watch = join(dir, 'incoming');
    const dbFile = join(dir, 'p.db');
    // A small file already waiting before the daemon starts.
    mkdirSync(watch, { recursive: true });
    writeFileSync(join(watch, 'early.jsonl'), sample('vm-boot.jsonl'));
    const d = start(watch, dbFile);
    await d.waitFor((l) => l.file === 'early.jsonl' && l.status === 'ingested');
    const [big] = churnSegments('big', 1, 300000);
    drop(watch, 'big.jsonl', big!);
    const reader = new Database(dbFile, { readonly: true });
    // Reads from a second connection succeed while the daemon holds its write transaction.
    let readsDuringIngest = 0;
    while (!d.logs.some((l) => l.file === 'big.jsonl')) {
      const n = reader.prepare("SELECT count(*) AS n FROM segments WHERE status = 'ingested'").get() as { n: number };
      if (n.n === 1) readsDuringIngest++;
      await sleep(20);
    }
    reader.close();
    expect(readsDuringIngest).toBeGreaterThan(5);
    await d.waitFor((l) => l.file === 'big.jsonl' && l.status === 'ingested', 120000);
    d.child.kill('SIGINT');
    expect(await d.exited).toBe(0);
    expect(existsSync(join(watch, 'processed', 'big.jsonl'))).toBe(true);
  }, 180000);
});
