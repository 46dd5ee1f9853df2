/**
 * A database written before the schema forbade control characters may hold
 * a trace_id with ESC[2J: every human output shows it escaped.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.js';

const root = new URL('../..', import.meta.url).pathname;
let db = '';
const EVIL = 'vm\u001b[2J\u001b]0;owned\u0007';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), ...args, '--db', db], { encoding: 'utf8', timeout: 20000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  db = join(mkdtempSync(join(tmpdir(), 'pinledger-esc-')), 'p.db');
  const w = openStore(db);
  w.prepare(`INSERT INTO traces (trace_id, backends, last_segment, last_seq, events, first_seen, updated_at, page_size) VALUES (?, '["upstream"]', 0, 3, 3, 0, 0, 4096)`).run(EVIL);
  w.close();
});

describe('control characters from an old database', () => {
  it('traces prints the trace_id escaped', () => {
    const r = cli('traces');
    expect(r.code, r.err).toBe(0);
    expect(r.out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(r.out.split('\n')[1]!.split('  ')[0]).toBe('vm\\x1b[2J\\x1b]0;owned\\x07');
  });

  it('a one-line message naming it is escaped too', () => {
    const r = cli('accounting', '--trace', EVIL);
    expect(r.code).toBe(0);
    expect(r.out + r.err).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    const missing = cli('state', '--trace', EVIL + 'x');
    expect(missing.code).toBe(2);
    expect(missing.err).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(missing.err).toContain('vm\\x1b[2J');
  });
});
