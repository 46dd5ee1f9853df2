/**
 * `pinledger lab run TRACE... [--kernel PACKAGE] -o OBSERVED`: the traces'
 * steps on a real kernel under QEMU, written back as observed traces for
 * `pinledger replay` to hold the model to (RET_MISMATCH, ACCT_MISMATCH).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv, CommandModule } from 'yargs';
import { DEFAULT_KERNEL_PACKAGE, LabError } from '../../lab/guest.js';
import { labRun } from '../../lab/lab-run.js';
import { UsageError, existingFiles, nonEmpty } from '../usage-error.js';

interface Args {
  traces: string[];
  kernel: string;
  out: string;
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
      .example('$0 lab run traces/samples/limit-overrun.jsonl -o observed.jsonl && $0 replay observed.jsonl', 'hold the model to Debian 12 kernel')
      .example('$0 lab run traces/samples/*.jsonl --kernel linux-image-6.12.95+deb12-amd64-unsigned -o observed/', 'every sample on the 6.12 backport, one observed trace each') as unknown as Argv<Args>,
  handler: async (a) => {
    const several = a.traces.length > 1;
    let report;
    try {
      report = await labRun(root, a.traces, a.kernel);
    } catch (e) {
      if (e instanceof LabError) throw new UsageError(`lab: ${e.message}`);
      throw e;
    }
    if (several) mkdirSync(a.out, { recursive: true });
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
    }
    if (report.bootSeconds !== undefined) process.stdout.write(`guest: ${report.kernelPackage} (${report.kernel}), ${report.bootSeconds.toFixed(1)} s\n`);
    if (refused > 0) process.exitCode = 1;
  },
};

export const labCommand: CommandModule<object, object> = {
  command: 'lab',
  describe: 'A real kernel under QEMU: lab run TRACE... -o OBSERVED runs traces on it and writes what it did',
  builder: (y: Argv) =>
    y
      .command(labRunCommand)
      .demandCommand(1, 'Name a lab command: run')
      .example('$0 lab run traces/samples/vm-boot.jsonl -o observed.jsonl', 'run one trace on Debian 12 kernel'),
  handler: () => undefined,
};
