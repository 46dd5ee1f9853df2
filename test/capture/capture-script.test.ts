/**
 * The live-host capture script: its sample output (a real capture, made by
 * `pinledger lab` of Debian 12's QEMU 7.2 starting paused with an e1000e
 * assigned through vfio-pci, on Debian 12's kernel 6.1.0-57 under bpftrace
 * 0.17; the kernel showed VmLck 261888 kB while it was paused) replays with
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
  const sample = `${root}tools/capture/sample-output.jsonl`;
  const replaySample = async (kernel?: string) => {
    const [t] = await replayFiles([sample], new Map([['upstream', BACKENDS.upstream!]]), { keepOutcomes: true, ...(kernel ? { kernel } : {}) });
    return t!.replayers.get('upstream')!;
  };

  it("sample output (a real QEMU 7.2 start on 6.1) replays with every observed result and locked_vm matching the model", async () => {
    const r = await replaySample();
    expect(r.findings.filter((f) => f.severity !== 'info').map((f) => f.code)).toEqual([]);
    // All 256 MiB of guest RAM (65536 pages), and pc.bios mapped READ-only before QEMU wrote it: the zero page, uncharged on 6.1.
    expect(r.lockedVm().peak.get(1311)).toBe(65536);
    expect(r.outcomes.find((o) => o.seq === 361)!.out).toEqual({ size: '0x10000000' });
    // The BARs QEMU mmapped from the device fd are pfnmap: described, never charged.
    expect(r.outcomes.find((o) => o.seq === 343)!.ret).toBe(9);
  });

  it('on 6.12 the same ROM map would be charged: replayed with --kernel 6.12 the model disagrees with what 6.1 showed by the 64 pages of pc.bios', async () => {
    const r = await replaySample('6.12.48+deb12-amd64');
    const acct = r.findings.filter((f) => f.code === 'ACCT_MISMATCH');
    expect(acct[0]!.seq).toBe(342);
    expect(acct[0]!.message).toBe("The trace observed locked_vm 65536 pages for pid 1311 where the model has 65600");
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
