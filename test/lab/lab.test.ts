/**
 * The lab on a real kernel: Debian 12's linux-image-amd64 booted under
 * QEMU (TCG) runs the samples and the mediated-device scenarios (with the
 * lab's test mdev driver), and the model must agree with it on every
 * result, output and locked_vm. A model with a deliberately wrong rule
 * (RLIMIT_MEMLOCK not enforced) must not. Needs qemu-system-x86,
 * busybox-static, gcc, make and Debian's package archive (.ci/run installs
 * them; the kernel's headers package is installed to build the driver).
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { labRun, type LabReport } from '../../src/lab/lab-run.js';
import { BACKENDS } from '../../src/model/backends/index.js';
import { Process } from '../../src/model/memory/process.js';
import { replayFiles } from '../../src/replay/replay-files.js';

const root = new URL('../..', import.meta.url).pathname;
const sample = (n: string) => join(root, 'traces/samples', `${n}.jsonl`);
const RUNNABLE = ['vm-boot', 'limit-overrun', 'viommu-two-containers', 'leak', 'vgpu-churn', 'unpin-unpinned', 'mixed-direct-mdev'];
const SCENARIOS = join(root, 'test/lab/fixtures/mdev-scenarios.jsonl');

let report: LabReport;
const dir = mkdtempSync(join(tmpdir(), 'pinledger-lab-'));
const observedFile = (n: string) => join(dir, `${n}.jsonl`);

async function mismatches(file: string): Promise<string[]> {
  const [t] = await replayFiles([file], new Map([['upstream', BACKENDS.upstream!]]));
  return t!.replayers
    .get('upstream')!
    .findings.filter((f) => f.code === 'RET_MISMATCH' || f.code === 'ACCT_MISMATCH')
    .map((f) => `${f.seq} ${f.code} ${f.message}`);
}

describe('pinledger lab run on Debian 12 (linux-image-amd64)', () => {
  beforeAll(async () => {
    expect(existsSync('/usr/bin/qemu-system-x86_64'), 'qemu-system-x86_64 is needed: apt-get install qemu-system-x86 (.ci/run does)').toBe(true);
    report = await labRun(root, [...[...RUNNABLE, 'ignored-unmap-notify', 'invalid-seq'].map(sample), SCENARIOS]);
    for (const o of report.outcomes) {
      if (o.observed) {
        const name = o.file.split('/').pop()!.replace(/\.jsonl$/, '');
        writeFileSync(observedFile(name), o.observed.map((x) => JSON.stringify(x)).join('\n') + '\n');
      }
    }
  }, 1_500_000);

  it('boots the 6.1 kernel and records it with the guest devices that stood in for the groups', () => {
    expect(report.kernel).toMatch(/^6\.1\.\d+-\d+-amd64$/);
    const vm = report.outcomes.find((o) => o.file.endsWith('vm-boot.jsonl'))!.observed!;
    expect(vm[0]!.kernel).toBe(report.kernel);
    const lab = vm[0]!.lab as { groups: { trace: number; guest: number; device: string }[] };
    expect(lab.groups).toHaveLength(1);
    expect(lab.groups[0]!.trace).toBe(12);
    expect(lab.groups[0]!.device).toMatch(/^0000:00:0\w\.0$/);
  });

  it('observes what the kernel did: ENOMEM at the memlock limit with 160 pages locked, the 4 GiB guest fully charged and released', () => {
    const limit = report.outcomes.find((o) => o.file.endsWith('limit-overrun.jsonl'))!.observed!;
    expect(limit.find((e) => e.seq === 6)).toMatchObject({ ret: 0, locked_vm: 160 });
    expect(limit.find((e) => e.seq === 7)).toMatchObject({ ret: 'ENOMEM', locked_vm: 160 });
    const vm = report.outcomes.find((o) => o.file.endsWith('vm-boot.jsonl'))!.observed!;
    expect(vm.find((e) => e.seq === 19)).toMatchObject({ ret: 0, locked_vm: 1048608 });
    expect(vm.find((e) => e.seq === 12)!.out).toEqual({ iova_pgsizes: '0x40201000', iova_ranges: [['0x0', '0xfedfffff'], ['0xfef00000', '0xffffffffffff']], dma_avail: 65535 });
    expect(vm.find((e) => e.seq === 25)).toMatchObject({ ret: 0, out: { size: '0x40000' }, locked_vm: 0 });
  });

  for (const n of [...RUNNABLE, 'mdev-scenarios']) {
    it(`${n}: the upstream model agrees with the kernel on every result, output and locked_vm`, async () => {
      expect(await mismatches(observedFile(n))).toEqual([]);
    });
  }

  it('runs the mediated scenarios on the test mdev driver: pin, repin, two mdevs on the same pages, a group joining and leaving with pins, an honoured unmap notification', () => {
    const o = report.outcomes.find((x) => x.file === SCENARIOS)!.observed!;
    const at = (seq: number) => o.find((e) => e.seq === seq)!;
    expect(at(12)).toMatchObject({ ret: 16, locked_vm: 16 }); // pin
    expect(at(13)).toMatchObject({ ret: 16, locked_vm: 16 }); // repin: a vpfn reference, no charge
    expect(at(14)).toMatchObject({ ret: 16, locked_vm: 24 }); // the second mdev: 8 of its pages are already vpfns
    expect(at(15)).toMatchObject({ ret: 16, locked_vm: 24 }); // unpin of the repinned range drops references only
    expect(at(17)).toMatchObject({ ret: 0, locked_vm: 4096 }); // an IOMMU group joins: the mapping is pinned, vpfns not charged twice
    expect(at(18)).toMatchObject({ ret: 0, locked_vm: 24 }); // and leaves: the charge becomes the vpfns again
    expect(at(20)).toMatchObject({ ret: 16, locked_vm: 16 });
    expect(at(25)).toMatchObject({ ret: 0, out: { size: '0x100000' }, locked_vm: 16 }); // the driver unpinned on the notification
    expect(at(26)).toMatchObject({ ret: 16, locked_vm: 0 });
    const lab = o[0]!.lab as { groups: { trace: number; device: string }[] };
    expect(lab.groups.map((g) => g.trace).sort()).toEqual([12, 40, 41]);
  });

  it('refuses before booting what it cannot run, with the reason', () => {
    expect(report.outcomes.find((o) => o.file.endsWith('/ignored-unmap-notify.jsonl'))!.refused).toMatch(/ignores the unmap notification for 8 pages \(the kernel would BUG\)/);
    expect(report.outcomes.find((o) => o.file.endsWith('/invalid-seq.jsonl'))!.refused).toMatch(/invalid-seq\.jsonl:5: field seq/);
  });

  it('catches a deliberately wrong model rule: with RLIMIT_MEMLOCK not enforced, the kernel disagrees', async () => {
    const spy = vi.spyOn(Process.prototype, 'limitPages').mockReturnValue(Number.POSITIVE_INFINITY);
    try {
      const found = await mismatches(observedFile('limit-overrun'));
      expect(found).toContain('7 RET_MISMATCH The trace observed ENOMEM where the model returns 0');
      expect(found.some((f) => f.startsWith('7 ACCT_MISMATCH The trace observed locked_vm 160 pages for pid 4242 where the model has 524192'))).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});
