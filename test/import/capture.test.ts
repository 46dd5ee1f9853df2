/**
 * The live-host capture script: its recorded sample output replays with
 * the results the kernel returned, and its header (from this machine's
 * sysfs) is a valid vfio-trace header.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../../src/model/backends/index.js';
import { replayFiles } from '../../src/replay/replay-files.js';
import { parseTraceText } from '../../src/trace/line-parser.js';

const root = new URL('../..', import.meta.url).pathname;

describe('tools/capture', () => {
  it('sample output replays with every observed result and locked_vm matching the model', async () => {
    const [t] = await replayFiles([`${root}tools/capture/sample-output.jsonl`], new Map([['upstream', BACKENDS.upstream!]]), { keepOutcomes: true });
    const r = t!.replayers.get('upstream')!;
    expect(r.findings.map((f) => f.code)).toEqual(['TRACE_UNKNOWN_CMD']);
    expect(r.outcomes.find((o) => o.seq === 14)!.ret).toBe(-22);
    expect(r.outcomes.find((o) => o.seq === 16)!.out).toEqual({ size: '0x7ffa0000' });
    expect(r.lockedVm().peak.get(21877)).toBe(524224);
    expect(r.memlockRequired().get(21877)!.bytes).toBe(524224n * 4096n);
  });

  it('vfio-capture.sh is valid bash and prints a valid header from sysfs', () => {
    expect(spawnSync('bash', ['-n', `${root}tools/capture/vfio-capture.sh`]).status).toBe(0);
    const r = spawnSync('bash', [`${root}tools/capture/vfio-capture.sh`, '--header-only'], { encoding: 'utf8', env: { ...process.env, TRACE_ID: 'ci/header' } });
    expect(r.status, r.stderr).toBe(0);
    const { header } = parseTraceText(r.stdout);
    expect(header.traceId).toBe('ci/header');
    expect(header.moduleParams.dmaEntryLimit).toBe(65535);
    expect(header.guestMemory).toBeUndefined();
  });

  it('vfio-capture.sh writes GUEST_MEMORY into the header, and refuses a bad one', () => {
    const run = (v: string) => spawnSync('bash', [`${root}tools/capture/vfio-capture.sh`, '--header-only'], { encoding: 'utf8', env: { ...process.env, GUEST_MEMORY: v } });
    expect(parseTraceText(run('16G').stdout).header.guestMemory).toBe(16n << 30n);
    expect(parseTraceText(run('4096MiB').stdout).header.guestMemory).toBe(4n << 30n);
    const bad = run('lots');
    expect(bad.status).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toBe('vfio-capture.sh: GUEST_MEMORY=lots: expected bytes or a size such as 16G\n');
  });
});
