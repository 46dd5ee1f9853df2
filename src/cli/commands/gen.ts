/** `pinledger gen WORKLOAD -o FILE`: write a realistic trace, deterministic for a seed. */
import type { Argv, CommandModule } from 'yargs';
import { WORKLOADS, type Workload, generate } from '../../gen/workloads.js';
import { fileSink } from '../../gen/writer.js';
import { formatSizeHelp, sizeArg } from '../size-arg.js';
import { nonEmpty, oneOf, outFile, wholeNumber } from '../usage-error.js';

interface Args {
  workload: Workload;
  out: string;
  seed: number;
  'trace-id'?: string;
  ram: bigint;
  events?: number;
  numa: number;
  hotplug: number;
  devices: number;
  batch: number;
  'working-set': number;
  memlock: bigint | 'unlimited';
}

export const genCommand: CommandModule<object, Args> = {
  command: 'gen <workload>',
  describe: `Generate a realistic trace: ${WORKLOADS.join(', ')}`,
  builder: (y: Argv) =>
    y
      .positional('workload', { choices: WORKLOADS, demandOption: true, describe: 'what to generate', coerce: oneOf('workload', WORKLOADS) })
      .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'output file (.jsonl or .jsonl.gz)', coerce: outFile('-o/--out') })
      .option('seed', { type: 'number', default: 1, coerce: wholeNumber('--seed') })
      .option('trace-id', { type: 'string', describe: 'default: gen/WORKLOAD-SEED', coerce: nonEmpty('--trace-id') })
      .option('ram', { type: 'string', default: '4G', describe: `guest RAM: ${formatSizeHelp}`, coerce: sizeArg('--ram') })
      .option('events', { type: 'number', describe: 'events: churn workloads default to 100000; vm-boot boots VMs one after another until this many (default: one boot)', coerce: wholeNumber('--events') })
      .option('numa', { type: 'number', default: 1, describe: 'vm-boot: NUMA nodes above 4 GiB', coerce: wholeNumber('--numa') })
      .option('hotplug', { type: 'number', default: 0, describe: 'vm-boot: 1 GiB DIMMs hot-plugged', coerce: wholeNumber('--hotplug') })
      .option('devices', { type: 'number', default: 1, describe: 'direct-assigned devices (viommu: one container each)', coerce: wholeNumber('--devices', 1) })
      .option('batch', { type: 'number', default: 16, describe: 'pages per pin call', coerce: wholeNumber('--batch', 1) })
      .option('working-set', { type: 'number', default: 4096, describe: 'pages a vendor driver keeps pinned', coerce: wholeNumber('--working-set', 1) })
      .option('memlock', { type: 'string', default: 'unlimited', describe: 'RLIMIT_MEMLOCK of the VMM: a size or unlimited', coerce: sizeArg('--memlock', ['unlimited']) })
      .example('$0 gen vm-boot --ram 2T --numa 4 -o boot.jsonl', 'a 2 TiB guest on four NUMA nodes')
      .example('$0 gen vgpu-churn --events 5000000 --seed 7 -o churn.jsonl.gz', 'five million vGPU pin events') as unknown as Argv<Args>,
  handler: async (a) => {
    const n = await generate(
      a.workload,
      {
        seed: a.seed,
        traceId: a['trace-id'] ?? `gen/${a.workload}-${a.seed}`,
        ram: a.ram,
        events: a.events ?? (a.workload === 'vm-boot' ? 0 : 100000),
        numa: a.numa,
        hotplug: a.hotplug,
        devices: a.devices,
        batch: a.batch,
        workingSet: a['working-set'],
        memlock: a.memlock,
      },
      fileSink(a.out),
    );
    process.stdout.write(`${a.out}: ${n} events\n`);
  },
};
