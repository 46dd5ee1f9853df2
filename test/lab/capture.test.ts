/**
 * The project's capture proven on a real kernel (issue 14): in one boot of
 * Debian 12's kernel (6.1) under QEMU, tools/capture/vfio-capture.sh runs
 * under Debian 12's bpftrace (0.17, copied into the guest with its
 * libraries) while the lab's helper runs every runnable sample, the
 * mediated-device scenarios and the workloads of test/lab/fixtures (dup2,
 * a forked child, mlock, the zero page, a BAR, exec), and then while
 * Debian's QEMU 7.2 starts paused (-S, -trace 'vfio_*') assigning a
 * vfio-pci device. It is stopped with SIGTERM, as an operator would.
 * Every capture must replay under upstream with no RET_MISMATCH and no
 * ACCT_MISMATCH; its DMA maps and unmaps must be the ones the helper
 * reported, with the same results and locked_vm; QEMU's own log, imported,
 * must list the same maps and unmaps as the capture of it, and both must
 * replay to the VmLck the kernel showed for the QEMU process.
 * Needs what test/lab/lab.test.ts needs, and bpftrace (.ci/run installs it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { labRun, type LabReport } from '../../src/lab/lab-run.js';
import { BACKENDS } from '../../src/model/backends/index.js';
import { replayFiles } from '../../src/replay/replay-files.js';

type Json = Record<string, unknown>;
const root = new URL('../..', import.meta.url).pathname;
const SAMPLES = ['vm-boot', 'limit-overrun', 'viommu-two-containers', 'leak', 'vgpu-churn', 'unpin-unpinned', 'mixed-direct-mdev'];
const FIXTURES = ['mdev-scenarios', 'dup', 'fork', 'mlock', 'zero-page', 'bar', 'exec', 'mdev-v2'];
const files = [...SAMPLES.map((n) => join(root, 'traces/samples', `${n}.jsonl`)), ...FIXTURES.map((n) => join(root, 'test/lab/fixtures', `${n}.jsonl`))];
const name = (f: string) => f.split('/').pop()!.replace(/\.jsonl$/, '');
const QEMU_MIB = 256;

let report: LabReport;
const dir = mkdtempSync(join(tmpdir(), 'pinledger-lab-capture-'));
const capturedFile = (n: string) => join(dir, `captured-${n}.jsonl`);
const parse = (text: string): Json[] => text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Json);
const outcome = (n: string) => report.outcomes.find((o) => name(o.file) === n)!;

async function replay(file: string) {
  const [t] = await replayFiles([file], new Map([['upstream', BACKENDS.upstream!]]));
  return t!.replayers.get('upstream')!;
}
async function mismatches(file: string): Promise<string[]> {
  return (await replay(file)).findings.filter((f) => f.code === 'RET_MISMATCH' || f.code === 'ACCT_MISMATCH').map((f) => `${f.seq} ${f.code} ${f.message}`);
}
/** MAP_DMA and UNMAP_DMA of a trace in order: iova, size, the kernel's ret and locked_vm. */
function dmaOps(events: Json[]): string[] {
  return events
    .filter((e) => e.type === 'ioctl' && (e.cmd === 'VFIO_IOMMU_MAP_DMA' || e.cmd === 'VFIO_IOMMU_UNMAP_DMA'))
    .map((e) => {
      const a = e.arg as Json;
      return `${e.cmd === 'VFIO_IOMMU_MAP_DMA' ? 'map' : 'unmap'} ${BigInt(a.iova as string).toString(16)}+${BigInt(a.size as string).toString(16)}`;
    });
}
const withResults = (events: Json[]) =>
  events.filter((e) => e.type === 'ioctl' && String(e.cmd).startsWith('VFIO_IOMMU_')).map((e) => `${String(e.cmd)} ${JSON.stringify(e.ret)} ${String(e.locked_vm)}`);
const errno = (r: unknown) => (r === 'ENOMEM' ? -12 : r === 'EINVAL' ? -22 : r === 'EEXIST' ? -17 : r === 'ENOENT' ? -2 : r === 'EPERM' ? -1 : r);

describe("the capture script on a real kernel, under Debian 12's bpftrace", () => {
  beforeAll(async () => {
    expect(existsSync('/usr/bin/bpftrace'), 'bpftrace is needed: apt-get install bpftrace (.ci/run does)').toBe(true);
    report = await labRun(root, files, { capture: true, qemu: { viommu: false, memMiB: QEMU_MIB } });
    for (const o of report.outcomes) {
      expect(o.refused, `${o.file} refused: ${o.refused}`).toBeUndefined();
      writeFileSync(capturedFile(name(o.file)), o.captured!);
    }
    writeFileSync(capturedFile('qemu'), report.qemu!.captured);
    writeFileSync(join(dir, 'qemu.log'), report.qemu!.log);
  }, 1_500_000);

  it('attaches, says how long it took, and writes a version 2 trace of the 6.1 kernel', () => {
    const o = outcome('vm-boot');
    expect(o.attachMs).toBeGreaterThan(0);
    expect(o.captureLog).toMatch(/attached in \d+ ms/);
    const header = parse(o.captured!)[0]!;
    expect(header).toMatchObject({ type: 'header', version: 2, kernel: report.kernel });
    expect(String(header.captured_by)).toMatch(/^vfio-capture\.sh \(bpftrace v0\.17\.0\)$/);
  });

  for (const f of files) {
    const n = name(f);
    it(`${n}: the capture replays under upstream with no RET_MISMATCH and no ACCT_MISMATCH`, async () => {
      expect(await mismatches(capturedFile(n))).toEqual([]);
    });
    it(`${n}: the capture holds the DMA maps and unmaps the helper made, with the kernel's results and locked_vm`, () => {
      const o = outcome(n);
      const observed = o.observed!.slice(1);
      const captured = parse(o.captured!).slice(1);
      expect(dmaOps(captured)).toEqual(dmaOps(observed));
      expect(withResults(captured).filter((l) => /MAP_DMA/.test(l))).toEqual(
        withResults(observed.map((e) => ({ ...e, ret: errno(e.ret) }))).filter((l) => /MAP_DMA/.test(l)),
      );
    });
  }

  it('the capture of a dup2ing process sees every ioctl after the dup2 (the helper dup2s every descriptor it opens)', () => {
    const c = parse(outcome('dup').captured!);
    expect(c.filter((e) => e.type === 'dup').length).toBeGreaterThanOrEqual(4);
    expect(c.filter((e) => e.type === 'ioctl').length).toBe(outcome('dup').observed!.filter((e) => e.type === 'ioctl').length);
  });

  it('the capture of the mediated scenarios records each pin and unpin with the mdev UUID and the pages pinned', () => {
    const c = parse(outcome('mdev-scenarios').captured!);
    const pins = c.filter((e) => e.type === 'pin');
    expect(pins.length).toBeGreaterThan(0);
    expect(pins[0]).toMatchObject({ dev: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001', ret: 16 });
    expect(c.some((e) => e.type === 'ioctl' && e.cmd === 'VFIO_GROUP_GET_DEVICE_FD')).toBe(true);
  });

  describe("Debian's QEMU 7.2 as the VMM", () => {
    it("starts paused with the guest's RAM locked: 256 MiB but the 0xc0000-0xfffff window, where pc.rom and isa-bios are mapped READ-only as the zero page", () => {
      expect(report.qemu!.monitor).toMatch(/VM status: paused \(prelaunch\)/);
      expect(report.qemu!.vmLckKiB).toBe(QEMU_MIB * 1024 - 256);
      expect(report.qemu!.exitStatus).toBe(0);
    });

    it('its capture replays under upstream with no RET_MISMATCH and no ACCT_MISMATCH, to the VmLck the kernel showed while it was paused', async () => {
      expect(await mismatches(capturedFile('qemu'))).toEqual([]);
      // VmLck was read while QEMU sat paused after its last DMA map: replay the capture up to there.
      const lines = report.qemu!.captured.split('\n').filter((l) => l !== '');
      const events = lines.map((l) => JSON.parse(l) as Json);
      let last = events.length - 1;
      while (last > 0 && !(events[last]!.type === 'ioctl' && String(events[last]!.cmd).endsWith('MAP_DMA'))) last--;
      expect(JSON.parse(lines[last]!).locked_vm).toBe(report.qemu!.vmLckKiB! / 4);
      const paused = join(dir, 'captured-qemu-paused.jsonl');
      writeFileSync(paused, lines.slice(0, last + 1).join('\n') + '\n');
      const r = await replay(paused);
      const pid = JSON.parse(lines[1]!).pid as number;
      expect(r.lockedVm().current.get(pid)).toBe(report.qemu!.vmLckKiB! / 4);
    });

    it('its log, imported, holds the same DMA maps and unmaps as the capture (order, iova, size), and replays to the same VmLck on 6.1', async () => {
      const imported = join(dir, 'imported.jsonl');
      const r = spawnSync('node', [join(root, 'bin/pinledger.js'), 'import', 'qemu-trace', join(dir, 'qemu.log'), '--kernel', report.kernel!, '-o', imported], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(dmaOps(parse(readFileSync(imported, 'utf8')))).toEqual(dmaOps(parse(report.qemu!.captured)));
      // QEMU's log ends where it was paused (its exit unmaps nothing it traces).
      const replayed = await replay(imported);
      expect([...replayed.lockedVm().current.values()]).toEqual([report.qemu!.vmLckKiB! / 4]);
    });
  });
});
