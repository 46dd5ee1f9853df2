/**
 * `diff`: where two designs disagree on a trace, the segment files replayed
 * again under both (each file checked against what was ingested first).
 */
import type { Argv, CommandModule } from 'yargs';
import { BACKENDS, BACKEND_NAMES } from '../../model/backends/index.js';
import { replaySegments } from '../../store/rebuild.js';
import { QueryError, requireTrace, segmentsOf } from '../../store/queries.js';
import { table } from '../format.js';
import { dbOption, openDb } from '../query-args.js';
import { designPair, nonEmpty } from '../usage-error.js';
import { type Common, json, jsonOption, outText } from './output.js';

type DiffArgs = Common & { trace: string; backends: string };

export const diffCommand: CommandModule<object, DiffArgs> = {
  command: 'diff',
  describe: 'Where two designs disagree on a trace: results, charges, findings, first divergence',
  builder: (y: Argv) =>
    y
      .option('db', dbOption)
      .option('json', jsonOption)
      .option('trace', { type: 'string', demandOption: true, coerce: nonEmpty('--trace') })
      .option('backends', { type: 'string', default: 'upstream,rfc-v5', describe: `two designs of ${BACKEND_NAMES.join(', ')}, comma separated`, coerce: designPair })
      .example('$0 diff --trace host42/vgpu --backends upstream,rfc-v5', 'the 2016 design against today') as unknown as Argv<DiffArgs>,
  handler: async (a) => {
    const db = openDb(a.db);
    const names = a.backends.split(',').map((s) => s.trim());
    if (names.length !== 2 || names.some((n) => !BACKENDS[n]) || names[0] === names[1]) {
      throw new QueryError(`--backends takes two different designs of: ${Object.keys(BACKENDS).join(', ')}`);
    }
    const [A, B] = names as [string, string];
    requireTrace(db, a.trace);
    // Replayed again from the segment files, so any two designs compare.
    const results: { seq: number; event: string; [k: string]: unknown }[] = [];
    const charges: { seq: number; pid: number; [k: string]: unknown }[] = [];
    let differingResults = 0;
    let differingCharges = 0;
    const d = await replaySegments(db, a.trace, segmentsOf(db, a.trace), undefined, new Map([[A, BACKENDS[A]!], [B, BACKENDS[B]!]]), undefined, (e, dr) => {
      const ra = dr.replayers.get(A)!;
      const rb = dr.replayers.get(B)!;
      const oa = ra.outcomes.pop()!;
      const ob = rb.outcomes.pop()!;
      const event = e.type === 'ioctl' ? e.call.cmd : e.type;
      if (oa.ret !== ob.ret) {
        differingResults++;
        if (results.length < 50) results.push({ seq: e.seq, event, [A]: oa.ret, [B]: ob.ret });
      }
      const la = ra.modelEnv!.processes;
      const lb = rb.modelEnv!.processes;
      for (const pid of new Set([...la.keys(), ...lb.keys()])) {
        const x = la.get(pid)?.lockedVm ?? 0;
        const y = lb.get(pid)?.lockedVm ?? 0;
        if (x !== y) {
          differingCharges++;
          if (charges.length < 50) charges.push({ seq: e.seq, pid, [A]: x, [B]: y });
        }
      }
    });
    const byCode = (name: string) => {
      const m: Record<string, number> = {};
      for (const f of d.replayers.get(name)!.findings) if (f.code !== 'DESIGN_DIVERGENCE') m[f.code] = (m[f.code] ?? 0) + 1;
      return m;
    };
    const first = d.replayers.get(A)!.findings.find((f) => f.code === 'DESIGN_DIVERGENCE') ?? null;
    const memlock = (name: string) => Object.fromEntries([...d.replayers.get(name)!.memlockRequired()].map(([pid, m]) => [pid, Number(m.bytes)]));
    const doc = {
      trace_id: a.trace,
      backends: [A, B],
      first_divergence: first && { seq: first.seq, message: first.message, details: first.details },
      results: { differing: differingResults, first: results },
      charges: { differing_events: differingCharges, first: charges },
      memlock_required: { [A]: memlock(A), [B]: memlock(B) },
      findings: { [A]: byCode(A), [B]: byCode(B) },
    };
    if (a.json) return json(doc);
    const lines = [`trace ${a.trace}: ${A} vs ${B}`];
    lines.push(first ? `first divergence at seq ${first.seq}: ${first.message}` : 'the designs never disagree');
    lines.push(`results differ at ${differingResults} events${results.length ? ':' : ''}`);
    if (results.length) lines.push(table(results.map((r) => [String(r.seq), r.event, String(r[A]), String(r[B])]), ['seq', 'event', A, B]));
    lines.push(`charges differ after ${differingCharges} events${charges.length ? ' (first ones):' : ''}`);
    if (charges.length) lines.push(table(charges.slice(0, 10).map((c) => [String(c.seq), String(c.pid), String(c[A]), String(c[B])]), ['seq', 'pid', `${A} pages`, `${B} pages`]));
    const pids = new Set([...Object.keys(doc.memlock_required[A]!), ...Object.keys(doc.memlock_required[B]!)]);
    lines.push(table([...pids].map((p) => [p, String(doc.memlock_required[A]![p] ?? 0), String(doc.memlock_required[B]![p] ?? 0)]), ['pid', `${A} memlock bytes`, `${B} memlock bytes`]));
    const codes = new Set([...Object.keys(doc.findings[A]!), ...Object.keys(doc.findings[B]!)]);
    if (codes.size) lines.push(table([...codes].sort().map((c) => [c, String(doc.findings[A]![c] ?? 0), String(doc.findings[B]![c] ?? 0)]), ['finding', A, B]));
    outText(lines.join('\n'));
  },
};
