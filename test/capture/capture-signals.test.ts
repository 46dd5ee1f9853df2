/**
 * tools/capture/vfio-capture.sh stopped as an operator stops it: Ctrl-C
 * (SIGINT to the terminal's whole process group) or SIGTERM to the script.
 * bpftrace cannot attach here (no BTF, no privileges in CI's container), so
 * a stand-in (fake-bpftrace.mjs) prints vfio-capture.bt's raw lines and logs
 * each one it printed; every one of them must reach the trace, and the
 * script must exit 0.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const script = join(root, 'tools/capture/vfio-capture.sh');
const fake = join(root, 'test/capture/fake-bpftrace.mjs');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  emitted: string[];
}

async function captureUntil(signal: 'SIGINT' | 'SIGTERM', toGroup: boolean, afterLines: number): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'pinledger-capture-'));
  const log = join(dir, 'emitted');
  const child = spawn('bash', [script], {
    env: { ...process.env, BPFTRACE: fake, FAKE_BPFTRACE_LOG: log, TRACE_ID: 'signal-test' },
    detached: true, // its own process group, like a job in a terminal
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // Wait until the stand-in has "captured" enough, then stop it mid-stream.
  for (let i = 0; i < 400; i++) {
    if (existsSync(log) && readFileSync(log, 'utf8').split('\n').length > afterLines) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  if (toGroup) process.kill(-child.pid!, signal);
  else child.kill(signal);
  const code = await done;
  return { code, stdout, stderr, emitted: readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') };
}

function expectNothingLost(r: Run): void {
  expect(r.code).toBe(0);
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  const header = JSON.parse(lines[0]!) as Record<string, unknown>;
  expect(header).toMatchObject({ type: 'header', format: 'vfio-trace', version: 2, trace_id: 'signal-test', end_record: true });
  const events = lines.slice(1).map((l) => JSON.parse(l) as Record<string, unknown>);
  // The last line is the end record: stopped by a signal, the capture is still complete.
  expect(events.pop()).toEqual({ type: 'end', events: events.length });
  // Every raw line but the markers (ready, end) is one event, in order, numbered from 1.
  const raw = r.emitted.filter((l) => !/ (ready|end) /.test(l));
  expect(raw.length).toBeGreaterThan(40);
  expect(events).toHaveLength(raw.length);
  expect(events.map((e) => e.seq)).toEqual(raw.map((_, i) => i + 1));
  expect(events.map((e) => String(e.ts))).toEqual(raw.map((l) => l.split(' ')[0]!.replace(/^0+/, '')));
  expect(events[0]).toMatchObject({ type: 'process', op: 'start', pid: 4242, memlock_limit: 'unlimited', cap_ipc_lock: false });
  expect(events[2]).toMatchObject({ type: 'ioctl', cmd: 'VFIO_IOMMU_MAP_DMA', ret: -22, arg: { flags: ['READ', 'WRITE'], iova: '0x0', size: '0x1000' } });
}

describe('vfio-capture.sh stops without losing a line', () => {
  it('Ctrl-C (SIGINT to the whole foreground process group): every captured line is written, exit 0', async () => {
    expectNothingLost(await captureUntil('SIGINT', true, 60));
  });

  it('SIGTERM to the script alone: every captured line is written, exit 0', async () => {
    expectNothingLost(await captureUntil('SIGTERM', false, 60));
  });

  it('SIGINT to the script alone (kill -INT): every captured line is written, exit 0', async () => {
    expectNothingLost(await captureUntil('SIGINT', false, 60));
  });
});

describe('vfio-capture.sh refuses bad usage before it starts bpftrace', () => {
  const run = (...args: string[]) => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-capture-'));
    const log = join(dir, 'emitted');
    const r = spawnSync('bash', [script, ...args], { env: { ...process.env, BPFTRACE: fake, FAKE_BPFTRACE_LOG: log }, encoding: 'utf8' });
    return { ...r, started: existsSync(log) };
  };
  for (const [args, message] of [
    [['--pid'], '--pid needs a process id'],
    [['--pid', 'abc'], '--pid abc: not a process id'],
    [['--pid', '999999999'], '--pid 999999999: no such process'],
    [['--comm', 'a b'], '--comm a b: one to four process names'],
    [['--comm', 'qemu-system-x86_64-too-long'], '--comm qemu-system-x86_64-too-long: one to four process names'],
    [['--pid', String(process.pid), '--comm', 'qemu'], '--pid and --comm cannot be used together'],
    [['--frobnicate'], 'unknown argument --frobnicate'],
  ] as const) {
    it(`${args.join(' ')}: exit 2, one line, nothing captured`, () => {
      const r = run(...args);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(message);
      expect(r.started).toBe(false);
    });
  }

  it('GUEST_MEMORY that is not a size: exit 2 before any output', () => {
    const r = spawnSync('bash', [script], { env: { ...process.env, BPFTRACE: fake, GUEST_MEMORY: '16 gigs' }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
  });
});

describe('vfio-capture.sh --pid attaches to a running process', () => {
  it('says plainly that what it did before is not captured, lists it under "attached", and starts it with its limit and capability from /proc', async () => {
    const vmm = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const dir = mkdtempSync(join(tmpdir(), 'pinledger-capture-'));
      const log = join(dir, 'emitted');
      const child = spawn('bash', [script, '--pid', String(vmm.pid)], {
        env: { ...process.env, BPFTRACE: fake, FAKE_BPFTRACE_LOG: log, TRACE_ID: 'attach-test' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const done = new Promise<number | null>((resolve) => child.on('close', resolve));
      while (!stderr.includes('attached in')) await new Promise((r) => setTimeout(r, 25));
      child.kill('SIGTERM');
      expect(await done).toBe(0);
      expect(stderr).toContain(`attaching to pid ${vmm.pid} (sleep) while it runs: what it mapped, pinned, locked or opened before now is not in this capture`);
      const lines = stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines[0]).toMatchObject({ type: 'header', version: 2, attached: [{ pid: vmm.pid, comm: 'sleep' }] });
      const limits = readFileSync(`/proc/${vmm.pid}/limits`, 'utf8');
      const soft = /^Max locked memory\s+(\S+)/m.exec(limits)![1]!;
      const capEff = BigInt('0x' + /^CapEff:\s+(\S+)/m.exec(readFileSync(`/proc/${vmm.pid}/status`, 'utf8'))![1]!);
      expect(lines[1]).toMatchObject({
        seq: 1, type: 'process', op: 'start', pid: vmm.pid, comm: 'sleep',
        memlock_limit: soft === 'unlimited' ? 'unlimited' : soft,
        cap_ipc_lock: ((capEff >> 14n) & 1n) === 1n,
      });
    } finally {
      vmm.kill();
    }
  });
});
