/**
 * `pinledger lab run`: plans every trace, refuses what cannot run before
 * booting, boots the guest once for the rest, and returns each runnable
 * trace as observed by the real kernel.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parseTraceText } from '../trace/line-parser.js';
import { TraceError } from '../trace/trace-error.js';
import { fetchKernel, GUEST_MEM_MIB, MACHINE, runGuest, LabError } from './guest.js';
import { observedTrace, parseResult, type StepResult } from './observe.js';
import { planTrace, type LabPlan } from './plan.js';

type Json = Record<string, unknown>;

export interface LabOutcome {
  file: string;
  /** The observed trace, or why the trace was not run. */
  observed?: Json[];
  refused?: string;
}

export interface LabReport {
  kernel?: string;
  kernelPackage?: string;
  bootSeconds?: number;
  outcomes: LabOutcome[];
}

function readText(file: string): string {
  const raw = readFileSync(file);
  return (file.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
}

export async function labRun(root: string, files: string[], kernelName?: string): Promise<LabReport> {
  const outcomes: LabOutcome[] = [];
  const runnable: { file: string; objects: Json[]; plan: LabPlan }[] = [];
  for (const file of files) {
    const text = readText(file);
    try {
      parseTraceText(text, file);
    } catch (e) {
      // A bad trace cannot run: refused with the reader's file, line and field.
      if (e instanceof TraceError) {
        outcomes.push({ file, refused: `bad trace: ${e.message}` });
        continue;
      }
      throw e;
    }
    const objects = text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Json);
    const p = planTrace(objects, { guestMemBytes: BigInt(GUEST_MEM_MIB - 512) << 20n });
    if (p.ok) runnable.push({ file, objects, plan: p.plan });
    else outcomes.push({ file, refused: p.reason });
  }
  if (runnable.length === 0) return { outcomes };
  const kernel = fetchKernel(kernelName);
  const devices = Math.max(...runnable.map((r) => r.plan.groups.length));
  const mdevs = [...new Set(runnable.flatMap((r) => r.plan.mdevs.map((m) => m.uuid)))];
  const guest = await runGuest(root, kernel, runnable.map((r) => r.plan.steps), devices, mdevs);
  runnable.forEach((r, i) => {
    const lines = guest.outputs[i]!;
    // The helper answers every step, failed or not: fewer answers mean it died.
    if (lines.length !== r.plan.steps.length) {
      throw new LabError(`${r.file}: the helper answered ${lines.length} of ${r.plan.steps.length} steps (last: ${lines.at(-1) ?? 'none'})`);
    }
    const typeOf = new Map(r.objects.map((o) => [o.seq as number, o.type]));
    const results = new Map<number, StepResult>();
    for (const line of lines) {
      const res = parseResult(line);
      if (!res) throw new LabError(`${r.file}: the helper wrote an unreadable result: ${line}`);
      // The helper's own setup (seq 0, memory a MAP_DMA needs) must work, or nothing after it means anything.
      if ((res.seq === 0 || typeOf.get(res.seq) === 'mmap') && res.ret < 0) {
        throw new LabError(`${r.file}: the guest could not set up memory at step ${res.seq} (errno ${-res.ret})`);
      }
      results.set(res.seq, res);
    }
    const groups = r.plan.groups.map((trace, k) => {
      const d = guest.devices.find((x) => x.index === k);
      if (!d) throw new LabError(`the guest has no device ${k} for group ${trace}`);
      return { trace, guest: d.group, device: d.name };
    });
    for (const m of r.plan.mdevs) {
      const g = guest.mdevs.find((x) => x.uuid === m.uuid);
      if (!g) throw new LabError(`the guest did not create mdev ${m.uuid} for group ${m.group}`);
      groups.push({ trace: m.group, guest: g.group, device: m.uuid });
    }
    outcomes.push({
      file: r.file,
      observed: observedTrace(r.objects, results, { kernel: guest.kernel, kernelPackage: kernel.package, machine: MACHINE, groups }),
    });
  });
  return { kernel: guest.kernel, kernelPackage: kernel.package, bootSeconds: guest.seconds, outcomes };
}
