/**
 * `pinledger lab run TRACE... [--kernel PACKAGE] -o OBSERVED [--capture
 * CAPTURED]`: the traces' steps on a real kernel under QEMU, written back
 * as observed traces for `pinledger replay` to hold the model to
 * (RET_MISMATCH, ACCT_MISMATCH), and with --capture what the project's
 * capture script saw meanwhile. `pinledger lab qemu -o DIR`: Debian's real
 * QEMU as the VMM in that guest, under the capture.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv, CommandModule } from 'yargs';
import { DEFAULT_KERNEL_PACKAGE, LabError } from '../../lab/guest.js';
import { labRun } from '../../lab/lab-run.js';
import { formatSizeHelp, sizeArg } from '../size-arg.js';
import { UsageError, existingFiles, nonEmpty } from '../usage-error.js';

/** The nested VM's memory: whole MiB, and what the 6 GiB lab guest can lock beside itself. */
function guestMemory(v: string | string[]): bigint {
  const mem = sizeArg('--memory')(v) as bigint;
  if (mem % (1n << 20n) !== 0n || mem < 16n << 20n || mem > 2n << 30n) throw new UsageError('--memory: a whole number of MiB from 16M to 2G (the lab guest holds it)');
  return mem;
}

/** A directory to write into: refused when it names an existing file. */
function notAFile(what: string): (v: string | string[]) => string {
  const base = nonEmpty(what);
  return (v: string | string[]) => {
    const s = base(v);
    if (existsSync(s) && !statSync(s).isDirectory()) throw new UsageError(`${what} ${s}: a file is there; name a directory`);
    return s;
  };
}

interface Args {
  traces: string[];
  kernel: string;
  out: string;
  capture?: string;
}

interface QemuArgs {
  kernel: string;
  out: string;
  viommu: boolean;
  'memlock-limit'?: bigint;
  memory: bigint;
}

const root = fileURLToPath(new URL('../../..', import.meta.url));

export const labRunCommand: CommandModule<object, Args> = {
  command: 'run <traces..>',
  describe: 'Run traces on a real Linux kernel under QEMU and write what it did (ret, out, locked_vm) as observed traces',
  builder: (y: Argv) =>
    y
      .positional('traces', { type: 'string', array: true, demandOption: true, describe: 'vfio-trace files to run', coerce: existingFiles('trace file') })
      .option('kernel', { type: 'string', default: DEFAULT_KERNEL_PACKAGE, describe: "a Debian kernel image package, e.g. linux-image-6.12.95+deb12-amd64-unsigned (bookworm-backports); unpacked into a cache, never installed", coerce: nonEmpty('--kernel') })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'the observed trace (one TRACE) or a directory (several)', coerce: nonEmpty('-o/--out') })
      .option('capture', { type: 'string', describe: "also run tools/capture/vfio-capture.sh (Debian's bpftrace) in the guest while the traces run, and write what it captured: a file (one TRACE) or a directory (several)", coerce: nonEmpty('--capture') })

      .example('$0 lab run traces/samples/limit-overrun.jsonl -o observed.jsonl && $0 replay observed.jsonl', 'hold the model to Debian 12 kernel')
      .example('$0 lab run traces/samples/*.jsonl --kernel linux-image-6.12.95+deb12-amd64-unsigned -o observed/', 'every sample on the 6.12 backport, one observed trace each') as unknown as Argv<Args>,
  handler: async (a) => {
    if (a.capture !== undefined && a.capture === a.out) throw new UsageError('--capture and -o/--out must be different paths');
    const several = a.traces.length > 1;
    let report;
    try {
      report = await labRun(root, a.traces, { kernel: a.kernel, capture: a.capture !== undefined });
    } catch (e) {
      if (e instanceof LabError) throw new UsageError(`lab: ${e.message}`);
      throw e;
    }
    if (several) mkdirSync(a.out, { recursive: true });
    if (several && a.capture !== undefined) mkdirSync(a.capture, { recursive: true });
    let refused = 0;
    for (const o of report.outcomes) {
      if (o.refused) {
        refused++;
        process.stderr.write(`${o.file}: not run: ${o.refused}\n`);
        continue;
      }
      const dest = several ? join(a.out, basename(o.file).replace(/\.gz$/, '')) : a.out;
      writeFileSync(dest, o.observed!.map((x) => JSON.stringify(x)).join('\n') + '\n');
      process.stdout.write(`${o.file}: observed on ${report.kernel} -> ${dest}\n`);
      if (a.capture !== undefined) {
        const cap = several ? join(a.capture, basename(o.file).replace(/\.gz$/, '')) : a.capture;
        writeFileSync(cap, o.captured!);
        process.stdout.write(`${o.file}: captured by vfio-capture.sh -> ${cap}\n`);
      }
    }
    const first = report.outcomes.find((o) => o.attachMs !== undefined);
    if (first) process.stdout.write(`capture: bpftrace attached in ${(first.attachMs! / 1000).toFixed(1)} s (in the emulated guest)\n`);
    if (report.bootSeconds !== undefined) process.stdout.write(`guest: ${report.kernelPackage} (${report.kernel}), ${report.bootSeconds.toFixed(1)} s\n`);
    if (refused > 0) process.exitCode = 1;
  },
};

export const labQemuCommand: CommandModule<object, QemuArgs> = {
  command: 'qemu',
  describe: "Run Debian's QEMU in the lab guest as a VMM assigning a vfio-pci device (paused, -trace 'vfio_*'), under the capture; write its log, the capture and its /proc status",
  builder: (y: Argv) =>
    y
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'a directory: qemu.log, capture.jsonl, status.txt', coerce: notAFile('-o/--out') })
      .option('viommu', { type: 'boolean', default: false, describe: "put the device behind QEMU's intel-iommu (its own container)" })
      .option('memlock-limit', { type: 'string', describe: `run QEMU with this RLIMIT_MEMLOCK and without CAP_IPC_LOCK, as libvirt does: ${formatSizeHelp}`, coerce: sizeArg('--memlock-limit') })
      .option('memory', { type: 'string', default: '256M', describe: `the VM's memory (QEMU -m): ${formatSizeHelp}`, coerce: guestMemory })
      .option('kernel', { type: 'string', default: DEFAULT_KERNEL_PACKAGE, describe: 'a Debian kernel image package for the host guest', coerce: nonEmpty('--kernel') })
      .example('$0 lab qemu -o qemu-run && $0 import qemu-trace qemu-run/qemu.log --kernel 6.1.0-57-amd64 -o imported.jsonl', "a real QEMU 7.2 start on Debian 12's kernel")
      .example('$0 lab qemu --viommu --memlock-limit 64M -o qemu-enomem', 'behind a vIOMMU, under a limit too small') as unknown as Argv<QemuArgs>,
  handler: async (a) => {
    let report;
    const spec = { viommu: a.viommu, memMiB: Number(a.memory >> 20n), ...(a['memlock-limit'] !== undefined ? { memlockLimit: a['memlock-limit'] } : {}) };
    try {
      report = await labRun(root, [], { kernel: a.kernel, qemu: spec });
    } catch (e) {
      if (e instanceof LabError) throw new UsageError(`lab: ${e.message}`);
      throw e;
    }
    const q = report.qemu!;
    mkdirSync(a.out, { recursive: true });
    writeFileSync(join(a.out, 'qemu.log'), q.log);
    writeFileSync(join(a.out, 'capture.jsonl'), q.captured);
    writeFileSync(join(a.out, 'status.txt'), q.status);
    process.stdout.write(`qemu-system-x86_64 ${q.args.join(' ')}\n`);
    if (q.vmLckKiB !== undefined) process.stdout.write(`VmLck while paused: ${q.vmLckKiB} kB (${q.vmLckKiB / 4} pages); QEMU quit with status ${q.exitStatus}\n`);
    else {
      const errors = q.log.split('\n').filter((l) => l.startsWith('qemu-system-x86_64:'));
      process.stdout.write(`QEMU exited with status ${q.exitStatus} before it was ready:\n${errors.map((l) => `  ${l}\n`).join('')}`);
      process.exitCode = 1;
    }
    process.stdout.write(`wrote ${join(a.out, 'qemu.log')}, ${join(a.out, 'capture.jsonl')}, ${join(a.out, 'status.txt')}\n`);
    process.stdout.write(`guest: ${report.kernelPackage} (${report.kernel}), ${report.bootSeconds!.toFixed(1)} s\n`);
  },
};

/** The lab's subcommands, in the order --help lists them. */
export const LAB_COMMANDS = [labRunCommand, labQemuCommand] as const;

export const labCommand: CommandModule<object, object> = {
  command: 'lab',
  describe: 'A real kernel under QEMU: lab run TRACE... -o OBSERVED runs traces on it and writes what it did; lab qemu -o DIR runs a real QEMU on it',
  builder: (y: Argv) =>
    y
      .command(LAB_COMMANDS as unknown as CommandModule[])
      .demandCommand(1, 'Name a lab command: run, qemu')
      .example('$0 lab run traces/samples/vm-boot.jsonl -o observed.jsonl', 'run one trace on Debian 12 kernel'),
  handler: () => undefined,
};
