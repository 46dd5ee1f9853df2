/** Which ./pinledger.config.json is read (src/cli/config.ts), the sweep's clock and the backoff, without processes. */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { implicitConfig, watchOf } from '../../src/cli/config.js';
import { backoffMs } from '../../src/daemon/retry.js';
import { StabilitySweep } from '../../src/daemon/stability.js';

describe('the implicit config file', () => {
  it('is read only when safe: not in the drop folder, a regular file of root or the euid, not group/other-writable', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'pinledger-lookup-'));
    const cfg = join(cwd, 'pinledger.config.json');
    expect(implicitConfig([], {}, 'traces/incoming', cwd)).toBeUndefined();
    writeFileSync(cfg, '{}');
    chmodSync(cfg, 0o644);
    expect(implicitConfig(['daemon'], {}, 'traces/incoming', cwd)).toEqual({ use: 'pinledger.config.json' });
    expect(implicitConfig(['daemon', '--watch', '.'], {}, 'traces/incoming', cwd)).toMatchObject({ reason: `the working directory is inside the drop folder ${cwd}` });
    expect(implicitConfig(['daemon', `--watch=${join(cwd, '..')}`], {}, 'x', cwd)).toMatchObject({ ignored: 'pinledger.config.json' });
    expect(implicitConfig(['daemon'], { PINLEDGER_WATCH: cwd }, 'x', cwd)).toMatchObject({ ignored: 'pinledger.config.json' });
    chmodSync(cfg, 0o666);
    expect(implicitConfig([], {}, 'x', cwd)).toEqual({ ignored: 'pinledger.config.json', reason: 'writable by its group (mode 666)' });
    chmodSync(cfg, 0o644);
    chownSync(cfg, 65534, 65534);
    expect(implicitConfig([], {}, 'x', cwd)).toEqual({ ignored: 'pinledger.config.json', reason: 'owned by uid 65534, neither root nor uid 0' });
    const other = mkdtempSync(join(tmpdir(), 'pinledger-lookup-'));
    mkdirSync(join(other, 'd'));
    symlinkSync(cfg, join(other, 'd', 'pinledger.config.json'));
    expect(implicitConfig([], {}, 'x', join(other, 'd'))).toEqual({ ignored: 'pinledger.config.json', reason: 'a symlink, not a regular file' });
    expect(watchOf(['daemon', '--watch', 'a', '--watch=b', '--', '--watch', 'c'], {}, 'x')).toBe('b');
  });
});

describe('the sweep and the backoff', () => {
  it('takes a name once its size and mtime held for stableMs, and a parked one again when it changes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-sweep-'));
    const f = join(dir, 'a.jsonl');
    writeFileSync(f, 'x');
    const taken: string[] = [];
    const s = new StabilitySweep(100, { stable: (p) => taken.push(p), error: (p) => taken.push(`error ${p}`) });
    s.note(f);
    s.sweep(1000);
    s.sweep(1050);
    expect(taken).toEqual([]);
    s.sweep(1100);
    expect(taken).toEqual([f]);
    s.park(f);
    s.sweep(2000);
    expect(s.counts()).toEqual({ pending: 0, parked: 1 });
    chmodSync(f, 0o600);
    s.sweep(2100);
    expect(s.counts()).toEqual({ pending: 1, parked: 0 });
    s.sweep(2200);
    expect(taken).toEqual([f, f]);
    s.stop();
    expect([1, 2, 3, 9, 10, 11].map(backoffMs)).toEqual([100, 200, 400, 25600, 30000, 30000]);
  });
});
