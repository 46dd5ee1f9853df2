/** `pinledger replay FILE...`: replay traces and report findings and locked memory. */
import type { Argv, CommandModule } from 'yargs';
import { BACKEND_NAMES } from '../../model/backends/index.js';
import type { Replayer } from '../../model/replay/replayer.js';
import { hasErrors, replayFiles, type TraceReplay } from '../../replay/replay-files.js';
import { formatPages, roundUpMiB, table } from '../format.js';
import { UsageError } from '../usage-error.js';
import { type BackendSpec, UnknownBackendError, driversFor, parseBackendSpec } from '../../replay/designs.js';

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
}

function backendJson(r: Replayer, withOutcomes: boolean): Record<string, unknown> {
  const { current, peak } = r.lockedVm();
  const memlock = r.memlockRequired();
  const o: Record<string, unknown> = {
    findings: r.findings.map((f) => ({ code: f.code, severity: f.severity, seq: f.seq, message: f.message, details: f.details })),
    locked_vm: Object.fromEntries(current),
    peak_locked_vm: Object.fromEntries(peak),
    memlock_required: Object.fromEntries([...memlock].map(([pid, m]) => [pid, Number(m.bytes)])),
    charge_by_cause: Object.fromEntries([...memlock].map(([pid, m]) => [pid, m.breakdown])),
  };
  if (withOutcomes) o.outcomes = r.outcomes.map((x) => (x.out ? { seq: x.seq, ret: x.ret, out: x.out } : { seq: x.seq, ret: x.ret }));
  return o;
}

export function traceJson(t: TraceReplay, withOutcomes: boolean): Record<string, unknown> {
  return {
    trace_id: t.traceId,
    backends: Object.fromEntries([...t.replayers].map(([name, r]) => [name, backendJson(r, withOutcomes)])),
  };
}

function human(t: TraceReplay): string {
  const lines: string[] = [];
  lines.push(`trace ${t.traceId} (${t.files.length} segment${t.files.length === 1 ? '' : 's'})`);
  for (const [name, r] of t.replayers) {
    const pageSize = Number(r.modelEnv?.pageSize ?? 4096n);
    lines.push('', `backend ${name}: ${r.events} events, ${r.containersCreated} containers`);
    const { current, peak } = r.lockedVm();
    const memlock = r.memlockRequired();
    const rows = [...peak.keys()].sort((a, b) => a - b).map((pid) => {
      const m = memlock.get(pid);
      const b = m?.breakdown;
      return [
        String(pid),
        formatPages(peak.get(pid) ?? 0, pageSize),
        formatPages(current.get(pid) ?? 0, pageSize),
        m ? `${m.bytes} B (${roundUpMiB(m.bytes)} MiB)` : '',
        b ? `direct ${b.direct}, pins ${b.pins}, shared ${b.shared}` : '',
      ];
    });
    if (rows.length) lines.push(table(rows, ['pid', 'peak locked_vm', 'final locked_vm', 'memlock needed', 'peak pages by cause']));
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

export const replayCommand: CommandModule<object, Args> = {
  command: 'replay <files..>',
  describe: 'Replay vfio-trace files through the backend designs and report findings',
  builder: (y: Argv) =>
    y
      .positional('files', { type: 'string', array: true, demandOption: true, describe: 'segment files (.jsonl or .jsonl.gz), in order' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON document' })
      .option('outcomes', { type: 'boolean', default: false, describe: 'with --json: the model result of every event' })
      .option('backend', {
        type: 'string',
        default: 'auto',
        describe: `backend design(s): ${BACKEND_NAMES.join(', ')}, comma separated, all, or auto (all when the trace has mediated groups, else upstream)`,
      })
      .example('$0 replay traces/samples/vm-boot.jsonl', 'replay a VM boot through upstream type1')
      .example('$0 replay seg0.jsonl seg1.jsonl.gz --json', 'two segments of one trace, as JSON')
      .example('$0 replay traces/samples/mixed-direct-mdev.jsonl --backend all', 'compare the three designs') as unknown as Argv<Args>,
  handler: async (args) => {
    const spec = backendSpec(args.backend);
    const traces = await replayFiles(args.files, (h) => driversFor(spec, h), { keepOutcomes: args.outcomes });
    if (args.json) {
      const docs = traces.map((t) => traceJson(t, args.outcomes));
      process.stdout.write(JSON.stringify(docs.length === 1 ? docs[0] : docs, null, 2) + '\n');
    } else {
      process.stdout.write(traces.map(human).join('\n\n') + '\n');
    }
    const failed = traces.some((t) => [...t.replayers.values()].some((r) => hasErrors(r.findings)));
    process.exitCode = failed ? 1 : 0;
  },
};
