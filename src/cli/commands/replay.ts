/** `pinledger replay FILE...`: replay traces and report findings and locked memory. */
import type { Argv, CommandModule } from 'yargs';
import { BACKENDS, BACKEND_NAMES } from '../../model/backends/index.js';
import type { Replayer } from '../../model/replay/replayer.js';
import type { IommuDriver } from '../../model/vfio/driver.js';
import { hasErrors, replayFiles, type TraceReplay } from '../../replay/replay-files.js';
import { formatPages, table } from '../format.js';
import { UsageError } from '../usage-error.js';

interface Args {
  files: string[];
  json: boolean;
  outcomes: boolean;
  backend: string;
}

function pickDrivers(spec: string): Map<string, IommuDriver> {
  const names = spec === 'all' ? BACKEND_NAMES : spec.split(',').map((s) => s.trim()).filter(Boolean);
  const out = new Map<string, IommuDriver>();
  for (const n of names) {
    const d = BACKENDS[n];
    if (!d) throw new UsageError(`Unknown backend ${JSON.stringify(n)}; known: ${BACKEND_NAMES.join(', ')}, all`);
    out.set(n, d);
  }
  if (out.size === 0) throw new UsageError('No backend named');
  return out;
}

function backendJson(r: Replayer, withOutcomes: boolean): Record<string, unknown> {
  const { current, peak } = r.lockedVm();
  const o: Record<string, unknown> = {
    findings: r.findings.map((f) => ({ code: f.code, severity: f.severity, seq: f.seq, message: f.message, details: f.details })),
    locked_vm: Object.fromEntries(current),
    peak_locked_vm: Object.fromEntries(peak),
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
    const rows = [...peak.keys()].sort((a, b) => a - b).map((pid) => [String(pid), formatPages(peak.get(pid) ?? 0, pageSize), formatPages(current.get(pid) ?? 0, pageSize)]);
    if (rows.length) lines.push(table(rows, ['pid', 'peak locked_vm', 'final locked_vm']));
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
      .option('backend', { type: 'string', default: 'upstream', describe: `backend design(s): ${BACKEND_NAMES.join(', ')}, comma separated, or all` })
      .example('$0 replay traces/samples/vm-boot.jsonl', 'replay a VM boot through upstream type1')
      .example('$0 replay seg0.jsonl seg1.jsonl.gz --json', 'two segments of one trace, as JSON') as unknown as Argv<Args>,
  handler: async (args) => {
    const drivers = pickDrivers(args.backend);
    const traces = await replayFiles(args.files, drivers, { keepOutcomes: args.outcomes });
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
