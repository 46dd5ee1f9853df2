/**
 * `pinledger import qemu-trace LOG -o FILE`: QEMU's VFIO trace log to a
 * vfio-trace file. Lines it cannot use are counted and reported, not fatal.
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import type { Argv, CommandModule } from 'yargs';
import { fileSink } from '../../gen/writer.js';
import { IMPORT_UNKNOWN, QemuTraceConverter, TopologyScan } from '../../import/qemu-trace.js';

interface Args {
  source: string;
  log: string;
  out: string;
  'trace-id'?: string;
}

async function* lines(file: string): AsyncGenerator<string> {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const l of rl) yield l;
}

export const importCommand: CommandModule<object, Args> = {
  command: 'import <source> <log>',
  describe: 'Convert a capture from another tool into a vfio-trace file (qemu-trace: QEMU -trace vfio_* logs)',
  builder: (y: Argv) =>
    y
      .positional('source', { choices: ['qemu-trace'], demandOption: true })
      .positional('log', { type: 'string', demandOption: true })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'the vfio-trace file to write (.jsonl or .jsonl.gz)' })
      .option('trace-id', { type: 'string', describe: 'default: qemu/<log file name>' })
      .example("$0 import qemu-trace qemu-vfio.log -o vm.jsonl", "a log from qemu -trace 'vfio_*' -D qemu-vfio.log") as unknown as Argv<Args>,
  handler: async (a) => {
    // Pass 1: the groups and devices, for the header.
    const scan = new TopologyScan();
    for await (const l of lines(a.log)) scan.line(l);
    const sink = fileSink(a.out);
    await sink.line(
      JSON.stringify({
        type: 'header',
        format: 'vfio-trace',
        version: 1,
        trace_id: a['trace-id'] ?? `qemu/${basename(a.log)}`,
        segment: 0,
        captured_by: 'pinledger import qemu-trace',
        import: { from: 'qemu-trace', file: basename(a.log), unknown: IMPORT_UNKNOWN },
        topology: scan.topology(),
      }),
    );
    // Pass 2: the events.
    const conv = new QemuTraceConverter();
    let seq = 0;
    await sink.line(JSON.stringify({ type: 'process', seq: ++seq, pid: 1, op: 'start', memlock_limit: 'unlimited', comm: 'qemu' }));
    const emit = async (evs: Record<string, unknown>[]) => {
      for (const e of evs) await sink.line(JSON.stringify({ type: e.type, seq: ++seq, ...e }));
    };
    for await (const l of lines(a.log)) await emit(conv.line(l));
    await emit(conv.end());
    await sink.close();
    const st = conv.stats;
    const unused = Object.entries(st.unused).sort((x, y) => y[1] - x[1]);
    process.stdout.write(`${a.out}: ${seq} events from ${st.lines} lines\n`);
    if (unused.length) process.stderr.write(`not used: ${unused.map(([n, c]) => `${n} ${c}`).join(', ')}\n`);
    if (st.unparsed) process.stderr.write(`not trace lines: ${st.unparsed}\n`);
  },
};
