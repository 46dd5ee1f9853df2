/**
 * The store's limits as options of `daemon` and `ingest` (src/store/limits.ts):
 * --max-file-size (a size), --max-events, --max-containers, --max-mappings,
 * --max-findings-per-code (whole numbers of at least 1). Unset: the defaults.
 */
import type { Argv } from 'yargs';
import { DEFAULT_LIMITS, type IngestLimits } from '../store/limits.js';
import { formatSizeHelp, sizeArg } from './size-arg.js';
import { UsageError, wholeNumber } from './usage-error.js';

export interface LimitArgs {
  'max-file-size'?: bigint;
  'max-events'?: number;
  'max-containers'?: number;
  'max-mappings'?: number;
  'max-findings-per-code'?: number;
}

const GiB = 1024 ** 3;

export function limitOptions<T>(y: Argv<T>): Argv<T> {
  return y
    .option('max-file-size', { type: 'string', coerce: sizeArg('--max-file-size'), describe: `largest segment file, uncompressed, that is read (a larger one is quarantined): ${formatSizeHelp} (default ${DEFAULT_LIMITS.maxFileBytes / GiB}G)` })
    .option('max-events', { type: 'number', coerce: wholeNumber('--max-events', 1), describe: `most events in one segment (default ${DEFAULT_LIMITS.maxEventsPerSegment})` })
    .option('max-containers', { type: 'number', coerce: wholeNumber('--max-containers', 1), describe: `most live VFIO containers in a trace (default ${DEFAULT_LIMITS.maxContainers})` })
    .option('max-mappings', { type: 'number', coerce: wholeNumber('--max-mappings', 1), describe: `most vfio_dma mappings a trace holds at once (default ${DEFAULT_LIMITS.maxMappings})` })
    .option('max-findings-per-code', {
      type: 'number',
      coerce: wholeNumber('--max-findings-per-code', 1),
      describe: `findings of one design and code kept as rows per trace; the rest are folded into one row with a count (default ${DEFAULT_LIMITS.maxFindingsPerCode})`,
    }) as unknown as Argv<T>;
}

/** The limits given on the command line (the others keep their defaults). */
export function limitsFromArgs(a: LimitArgs): Partial<IngestLimits> {
  const out: Partial<IngestLimits> = {};
  if (a['max-file-size'] !== undefined) {
    if (a['max-file-size'] < 1n || a['max-file-size'] > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`--max-file-size ${a['max-file-size']}: expected at least 1 byte and at most 2^53 - 1`);
    out.maxFileBytes = Number(a['max-file-size']);
  }
  if (a['max-events'] !== undefined) out.maxEventsPerSegment = a['max-events'];
  if (a['max-containers'] !== undefined) out.maxContainers = a['max-containers'];
  if (a['max-mappings'] !== undefined) out.maxMappings = a['max-mappings'];
  if (a['max-findings-per-code'] !== undefined) out.maxFindingsPerCode = a['max-findings-per-code'];
  return out;
}
