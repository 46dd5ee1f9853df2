/** `pinledger replay FILE...`: replay traces and report findings and locked memory. */
import type { Argv, CommandModule } from 'yargs';
import { BACKEND_NAMES } from '../../model/backends/index.js';
import { memlockBytes } from '../../model/memlock.js';
import type { ProcessAccounting, Replayer } from '../../model/replay/replayer.js';
import { answerOfAccounting, memlockSentence, sentencePrefix } from '../../report/memlock.js';
import { hasErrors, replayFiles, type TraceReplay } from '../../replay/replay-files.js';
import { formatKiB, formatPages, formatSize, plural, table, thousands } from '../format.js';
import { guestMemoryOption } from '../size-arg.js';
import { kernelOption } from '../kernel-arg.js';
import { UsageError, backendArg, existingFiles } from '../usage-error.js';
import { type BackendSpec, UnknownBackendError, decidingDesigns, driversFor, orderDesigns, parseBackendSpec } from '../../replay/designs.js';

export function backendSpec(spec: string): BackendSpec {
  try {
    return parseBackendSpec(spec);
  } catch (e) {
    if (e instanceof UnknownBackendError) throw new UsageError(e.message);
    throw e;
  }
}

interface Args {
  files: string[];
  json: boolean;
  outcomes: boolean;
  backend: string;
  'guest-memory'?: bigint;
  kernel?: string;
}

/** Whether a design's results decide the exit status and the headline, or are shown for comparison. */
type DesignRole = 'deciding' | 'comparison';

/** A byte count as the --json documents give it: a number below 2^53, else a 0x string. */
function jsonBytes(b: bigint | null): number | string | null {
  if (b === null) return null;
  return b < 1n << 53n ? Number(b) : '0x' + b.toString(16);
}

function backendJson(r: Replayer, role: DesignRole, withOutcomes: boolean, pageShift: bigint): Record<string, unknown> {
  const acct = [...r.accounting().values()].sort((a, b) => a.pid - b.pid);
  const byPid = <T>(f: (a: ProcessAccounting) => T) => Object.fromEntries(acct.map((a) => [a.pid, f(a)]));
  const o: Record<string, unknown> = {
    role,
    findings: r.findings.map((f) => ({ code: f.code, severity: f.severity, seq: f.seq, message: f.message, details: f.details })),
    locked_vm: byPid((a) => a.finalLockedVm),
    peak_locked_vm: byPid((a) => a.peakLockedVm),
    memlock_required: byPid((a) => jsonBytes(memlockBytes(a, pageShift).required)),
    memlock_limit: byPid((a) => jsonBytes(memlockBytes(a, pageShift).limit)),
    memlock_short: byPid((a) => jsonBytes(memlockBytes(a, pageShift).short)),
    limit_refusals: byPid((a) => (a.refusals ? { count: a.refusals.count, first_seq: a.refusals.firstSeq, first_event: a.refusals.firstEvent } : null)),
    charge_by_cause: byPid((a) => a.breakdown),
  };
  if (withOutcomes) o.outcomes = r.outcomes.map((x) => (x.out ? { seq: x.seq, ret: x.ret, out: x.out } : { seq: x.seq, ret: x.ret }));
  return o;
}

/** The pages' shift of a replayed trace. */
function pageShiftOf(r: Replayer): bigint {
  return BigInt(Math.log2(r.pageSize));
}

/** One sentence per process of each design, the deciding design's first, comparisons marked. */
export function answerSentences(t: TraceReplay, guestMemory: bigint | null): string[] {
  const names = orderDesigns([...t.replayers.keys()]);
  const deciding = new Set(decidingDesigns(names));
  const out: string[] = [];
  for (const name of names) {
    const r = t.replayers.get(name)!;
    const prefix = sentencePrefix(name, deciding);
    for (const a of [...r.accounting().values()].sort((x, y) => x.pid - y.pid)) {
      out.push(prefix + memlockSentence(answerOfAccounting(a, pageShiftOf(r)), guestMemory ?? t.guestMemory ?? null));
    }
  }
  return out;
}

export function traceJson(t: TraceReplay, withOutcomes: boolean, guestMemory: bigint | null = null): Record<string, unknown> {
  const names = orderDesigns([...t.replayers.keys()]);
  const deciding = new Set(decidingDesigns(names));
  return {
    trace_id: t.traceId,
    answer: answerSentences(t, guestMemory),
    backends: Object.fromEntries(
      names.map((name) => {
        const r = t.replayers.get(name)!;
        return [name, backendJson(r, deciding.has(name) ? 'deciding' : 'comparison', withOutcomes, pageShiftOf(r))];
      }),
    ),
  };
}

function human(t: TraceReplay, guestMemory: bigint | null): string {
  const names = orderDesigns([...t.replayers.keys()]);
  const deciding = new Set(decidingDesigns(names));
  const lines: string[] = [`trace ${t.traceId} (${plural(t.files.length, 'segment')})`, ''];
  for (const s of answerSentences(t, guestMemory)) lines.push(s);
  for (const name of names) {
    const r = t.replayers.get(name)!;
    const pageSize = r.pageSize;
    const shift = pageShiftOf(r);
    const role = deciding.has(name) ? '' : ' (comparison)';
    lines.push('', `backend ${name}${role}: ${plural(r.events, 'event')}, ${plural(r.containersCreated, 'container')}`);
    const rows = [...r.accounting().values()]
      .sort((a, b) => a.pid - b.pid)
      .map((a) => {
        const m = memlockBytes(a, shift);
        const b = a.breakdown;
        return [
          String(a.pid),
          formatPages(a.peakLockedVm, pageSize),
          formatPages(a.finalLockedVm, pageSize),
          `${formatKiB(m.required)} (${formatSize(m.required)})`,
          m.limit === null ? (a.capIpcLock ? 'none (CAP_IPC_LOCK)' : 'unlimited') : formatKiB(m.limit),
          `direct ${thousands(b.direct)}, pins ${thousands(b.pins)}, shared ${thousands(b.shared)}${b.mlock === undefined ? '' : `, mlock ${thousands(b.mlock)}`}`,
        ];
      });
    if (rows.length) lines.push(table(rows, ['pid', 'peak locked_vm', 'final locked_vm', 'memlock needed', 'limit in force', 'needed pages by cause']));
    const byCode = new Map<string, number>();
    for (const f of r.findings) byCode.set(f.code, (byCode.get(f.code) ?? 0) + 1);
    if (byCode.size === 0) lines.push('findings: none');
    else {
      lines.push(`findings: ${[...byCode].map(([c, n]) => `${c} ${n}`).join(', ')}`);
      lines.push(table(r.findings.map((f) => [String(f.seq), f.severity, f.code, f.message]), ['seq', 'severity', 'code', 'message']));
    }
  }
  return lines.join('\n');
}

/**
 * Exit 1 when the workload failed under its deciding design: an error
 * finding, or an operation RLIMIT_MEMLOCK refused. Comparison designs never
 * decide it.
 */
export function workloadFailed(t: TraceReplay): boolean {
  return decidingDesigns([...t.replayers.keys()]).some((name) => {
    const r = t.replayers.get(name)!;
    return hasErrors(r.findings) || [...r.accounting().values()].some((a) => a.refusals !== undefined);
  });
}

export const replayCommand: CommandModule<object, Args> = {
  command: 'replay <files..>',
  describe: 'Replay vfio-trace files through the backend designs and report findings',
  builder: (y: Argv) =>
    y
      .positional('files', { type: 'string', array: true, demandOption: true, describe: 'segment files (.jsonl or .jsonl.gz), in order', coerce: existingFiles('trace file') })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON document' })
      .option('outcomes', { type: 'boolean', default: false, describe: 'with --json: the model result of every event' })
      .option('backend', {
        type: 'string',
        default: 'auto',
        describe: `backend design(s): ${BACKEND_NAMES.join(', ')}, comma separated, all, or auto (all when the trace has mediated groups, else upstream)`,
        coerce: backendArg,
      })
      .option('guest-memory', guestMemoryOption)
      .option('kernel', kernelOption)
      .example('$0 replay traces/samples/vm-boot.jsonl', 'replay a VM boot through upstream type1')
      .example('$0 replay qemu-start.jsonl --kernel 6.1.0-57-amd64', "as Debian 12's kernel would charge it (the zero page not charged)")
      .example('$0 replay seg0.jsonl seg1.jsonl.gz --json', 'two segments of one trace, as JSON')
      .example('$0 replay traces/samples/mixed-direct-mdev.jsonl --backend all', 'compare the three designs') as unknown as Argv<Args>,
  handler: async (args) => {
    const spec = backendSpec(args.backend);
    const traces = await replayFiles(args.files, (h) => driversFor(spec, h), {
      keepOutcomes: args.outcomes,
      ...(args.kernel === undefined ? {} : { kernel: args.kernel }),
    });
    const guest = args['guest-memory'] ?? null;
    if (args.json) {
      const docs = traces.map((t) => traceJson(t, args.outcomes, guest));
      process.stdout.write(JSON.stringify(docs.length === 1 ? docs[0] : docs, null, 2) + '\n');
    } else {
      process.stdout.write(traces.map((t) => human(t, guest)).join('\n\n') + '\n');
    }
    process.exitCode = traces.some(workloadFailed) ? 1 : 0;
  },
};
