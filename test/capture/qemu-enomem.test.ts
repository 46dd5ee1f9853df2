/**
 * A VM that failed to start, as the lab recorded it (`pinledger lab qemu
 * --viommu --memlock-limit 64M`): Debian 12's QEMU 7.2.22 behind an
 * intel-iommu, run as libvirt runs it (RLIMIT_MEMLOCK 64 MiB, no
 * CAP_IPC_LOCK) on Debian 12's kernel 6.1.0-57, exited 1 with
 * "VFIO_MAP_DMA failed: Cannot allocate memory" at its 256 MiB pc.ram.
 * QEMU's own log (imported with the limit it ran under) and the capture
 * script's record of the same run must give the operator the same answer:
 * the limit it needed (256 MiB: pc.bios's READ-only map is the zero page on
 * 6.1), the limit in force, and the map that failed because of it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const cli = (...args: string[]) => spawnSync(process.execPath, [join(root, 'bin/pinledger.js'), ...args], { encoding: 'utf8' });
const log = join(root, 'traces/samples/qemu/qemu-7.2-q35-viommu-enomem.log');
const captured = join(root, 'test/capture/fixtures/qemu-7.2-viommu-enomem.jsonl');

interface Answer {
  memlock_required: Record<string, number>;
  memlock_limit: Record<string, number | null>;
  memlock_short: Record<string, number>;
  limit_refusals: Record<string, { count: number; first_seq: number; first_event: string } | null>;
}

function answer(file: string): { status: number | null; json: Answer } {
  const r = cli('replay', file, '--json', '--backend', 'upstream');
  return { status: r.status, json: (JSON.parse(r.stdout) as { backends: { upstream: Answer } }).backends.upstream };
}

describe('a QEMU 7.2 start refused by RLIMIT_MEMLOCK, from its log and from the capture', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pinledger-enomem-'));
  const imported = join(dir, 'imported.jsonl');

  it('the log imports with the limit QEMU ran under and the kernel, the failed map with its -12', () => {
    const r = cli('import', 'qemu-trace', log, '--memlock-limit', '64M', '--kernel', '6.1.0-57-amd64', '-o', imported);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('1 refused map');
  });

  for (const [what, file] of [['the imported log', imported], ['the capture', captured]] as const) {
    it(`${what}: exit 1, needs 256 MiB, 64 MiB in force, short by 192 MiB, the pc.ram map refused`, () => {
      const { status, json } = answer(file);
      expect(status).toBe(1);
      const pid = Object.keys(json.memlock_required)[0]!;
      expect(json.memlock_required[pid]).toBe(256 * 1024 * 1024);
      expect(json.memlock_limit[pid]).toBe(64 * 1024 * 1024);
      expect(json.memlock_short[pid]).toBe(192 * 1024 * 1024);
      expect(json.limit_refusals[pid]!.count).toBe(1);
      expect(json.limit_refusals[pid]!.first_event).toBe('VFIO_IOMMU_MAP_DMA');
    });
  }
});
