/** One daemon per database (src/store/lock.ts), with real processes. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireStoreLock } from '../../src/store/lock.js';
import { killLeftDaemons, ledger, startDaemon } from './fixtures.js';

const root = new URL('../..', import.meta.url).pathname;
const sample = (n: string) => join(root, 'traces/samples', n);
afterEach(killLeftDaemons);

describe('one daemon per database', () => {
  it('a second daemon exits 2 naming the first one pid before touching its folder; ingest is refused while the daemon holds the database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-lock-'));
    const dbFile = join(dir, 'p.db');
    const d = startDaemon(join(dir, 'a'), dbFile);
    await d.waitFor((l) => l.msg === 'ready');
    const second = startDaemon(join(dir, 'b'), dbFile);
    expect(await second.exited).toBe(2);
    expect(second.stderr()).toBe(`pinledger: ${dbFile} is held by the pinledger daemon pid ${d.child.pid}: one daemon per database\n`);
    // Its folder was never created.
    expect(readdirSync(dir).filter((n) => !n.startsWith('p.db')).sort()).toEqual(['a']);

    const ing = spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), 'ingest', sample('vm-boot.jsonl'), '--db', dbFile], { encoding: 'utf8' });
    expect(ing.status).toBe(2);
    expect(ing.stdout).toBe('');
    expect(ing.stderr).toBe(`pinledger: ${dbFile} is held by the pinledger daemon pid ${d.child.pid}: drop the files into its folder instead\n`);
    expect(ledger(dbFile)).toEqual([]);

    // kill -9 leaves no stale lock.
    d.child.kill('SIGKILL');
    await d.exited;
    const after = spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), 'ingest', sample('vm-boot.jsonl'), '--db', dbFile], { encoding: 'utf8' });
    expect(after.status, after.stderr).toBe(0);
    expect(ledger(dbFile).map((r) => [r.name, r.status])).toEqual([['vm-boot.jsonl', 'ingested']]);
  }, 30000);

  it('ingest waits while another ingest holds the database, then goes on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-lock-'));
    const dbFile = join(dir, 'p.db');
    mkdirSync(join(dir, 'x'));
    const release = acquireStoreLock(dbFile, 'ingest');
    expect(JSON.parse(readFileSync(`${dbFile}.lock.json`, 'utf8'))).toMatchObject({ pid: process.pid, role: 'ingest' });
    const child = spawn(process.execPath, [join(root, 'bin/pinledger.js'), 'ingest', sample('vm-boot.jsonl'), '--db', dbFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    await new Promise((r) => setTimeout(r, 1500));
    expect(out).toBe('');
    release();
    expect(await exited).toBe(0);
    expect(err).toBe(`pinledger: ${dbFile} is in use by pinledger ingest pid ${process.pid}: waiting up to 60 s\n`);
    expect(out).toMatch(/^vm-boot\.jsonl: ingested trace host42\/vm-boot segment 0 /);
  }, 30000);
});
