/**
 * `pinledger import qemu-trace LOG -o FILE`: QEMU's VFIO trace log to a
 * vfio-trace file. Lines it cannot use are counted and reported, not fatal.
 * What the log cannot say but the operator knows (the VM's RLIMIT_MEMLOCK,
 * its memory) comes from options.
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import type { Argv, CommandModule } from 'yargs';
import { fileSink } from '../../gen/writer.js';
import { qemuHeader } from '../../import/qemu-header.js';
import { QemuTraceConverter } from '../../import/qemu-trace.js';
import { kernelArg } from '../kernel-arg.js';
import { formatSizeHelp, sizeArg } from '../size-arg.js';
import { existingFiles, nonEmpty, oneOf, outFile } from '../usage-error.js';

interface Args {
  source: string;
  log: string;
  out: string;
  'trace-id'?: string;
  /** Bytes (coerced by sizeArg), or "unlimited". */
  'memlock-limit'?: bigint | 'unlimited';
  'guest-memory'?: bigint;
  kernel?: string;
}

const hex = (v: bigint) => '0x' + v.toString(16);

async function* lines(file: string): AsyncGenerator<string> {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const l of rl) yield l;
}

export const importCommand: CommandModule<object, Args> = {
  command: 'import <source> <log>',
  describe: 'Convert a capture from another tool into a vfio-trace file (qemu-trace: QEMU -trace vfio_* logs)',
  builder: (y: Argv) =>
    y
      .positional('source', { choices: ['qemu-trace'], demandOption: true, describe: 'the tool the capture comes from', coerce: oneOf('source', ['qemu-trace']) })
      .positional('log', { type: 'string', demandOption: true, describe: "QEMU's trace log", coerce: (v: string) => existingFiles('log')(v)[0]! })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'the vfio-trace file to write (.jsonl or .jsonl.gz)', coerce: outFile('-o/--out') })
      .option('trace-id', { type: 'string', describe: 'default: qemu/<log file name>', coerce: nonEmpty('--trace-id') })
      .option('memlock-limit', {
        type: 'string',
        coerce: sizeArg('--memlock-limit', ['unlimited']),
        describe: `the RLIMIT_MEMLOCK the VM ran under: ${formatSizeHelp}, or unlimited (default: unlimited, and listed as unknown)`,
      })
      .option('guest-memory', { type: 'string', coerce: sizeArg('--guest-memory'), describe: `the VM's memory as libvirt counts it (header guest_memory): ${formatSizeHelp}` })
      .option('kernel', { type: 'string', coerce: kernelArg, describe: "the host kernel's release (header kernel; it picks the zero-page rule replay applies to read-only ROM maps). Default: unset" })
      .example("$0 import qemu-trace qemu-vfio.log -o vm.jsonl", "a log from qemu -trace 'vfio_*' 2> qemu-vfio.log")
      .example('$0 import qemu-trace vm.log --memlock-limit 64M --guest-memory 2G -o vm.jsonl', 'a VM that ran under ulimit -l 65536')
      .example('$0 import qemu-trace vm.log --kernel 6.1.0-57-amd64 -o vm.jsonl', 'a VM on Debian 12: its read-only ROM maps pin the zero page, uncharged') as unknown as Argv<Args>,
  handler: async (a) => {
    // Pass 1: the groups, the inferences and the format version the events need, for the header.
    const scan = new QemuTraceConverter();
    for await (const l of lines(a.log)) scan.line(l);
    scan.end();
    const limit = a['memlock-limit'];
    const sink = fileSink(a.out);
    await sink.line(
      JSON.stringify(
        qemuHeader({
          traceId: a['trace-id'] ?? `qemu/${basename(a.log)}`,
          file: basename(a.log),
          version: scan.version,
          topology: scan.topology(),
          ...(a.kernel === undefined ? {} : { kernel: a.kernel }),
          ...(a['guest-memory'] === undefined ? {} : { guestMemory: a['guest-memory'] }),
          memlockKnown: limit !== undefined,
          inferred: scan.inferred(),
        }),
      ),
    );
    // Pass 2: the events.
    const conv = new QemuTraceConverter();
    let seq = 0;
    const memlock = limit === undefined || limit === 'unlimited' ? 'unlimited' : hex(limit);
    await sink.line(JSON.stringify({ type: 'process', seq: ++seq, pid: 1, op: 'start', memlock_limit: memlock, comm: 'qemu' }));
    const emit = async (evs: Record<string, unknown>[]) => {
      for (const e of evs) await sink.line(JSON.stringify({ type: e.type, seq: ++seq, ...e }));
    };
    for await (const l of lines(a.log)) await emit(conv.line(l));
    await emit(conv.end());
    await sink.close();
    const st = conv.stats;
    const unused = Object.entries(st.unused).sort((x, y) => y[1] - x[1]);
    const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
    const refused = st.refused ? `, ${plural(st.refused, 'refused map')}` : '';
    const roms = st.romMaps ? `, ${plural(st.romMaps, 'ROM map')} READ-only` : '';
    const bars = st.barMaps ? `, ${plural(st.barMaps, 'BAR map')} over pfnmap` : '';
    process.stdout.write(`${a.out}: ${seq} events from ${st.lines} lines${refused}${roms}${bars}\n`);
    if (unused.length) process.stderr.write(`not used: ${unused.map(([n, c]) => `${n} ${c}`).join(', ')}\n`);
    if (st.unparsed) process.stderr.write(`not trace lines: ${st.unparsed}\n`);
  },
};
