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
import { CAPTURED_COMMS, splitCapture } from './capture.js';
import { qemuArgs, type QemuSpec } from './qemu-guest.js';
import { observedTrace, parseResult, type StepResult } from './observe.js';
import { planTrace, type LabPlan } from './plan.js';

type Json = Record<string, unknown>;

export interface LabOutcome {
  file: string;
  /** The observed trace, or why the trace was not run. */
  observed?: Json[];
  refused?: string;
  /** With a capture: what the project's capture script wrote while the trace ran (a vfio-trace file), and its stderr. */
  captured?: string;
  captureLog?: string;
  /** How long the capture took to attach, ms. */
  attachMs?: number;
}

export interface LabReport {
  kernel?: string;
  kernelPackage?: string;
  bootSeconds?: number;
  outcomes: LabOutcome[];
  qemu?: QemuOutcome;
}

function readText(file: string): string {
  const raw = readFileSync(file);
  return (file.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
}

export interface LabRunOptions {
  kernel?: string;
  /** Run the project's capture script (tools/capture) around each trace. */
  capture?: boolean;
  /** After the traces, run Debian's QEMU as a VMM on the guest's first vfio-pci device, under the capture. */
  qemu?: QemuSpec;
}

/** What the lab's real QEMU did: its log, the capture of it, and its /proc status before it quit. */
export interface QemuOutcome {
  log: string;
  captured: string;
  /** /proc/PID/status while QEMU was paused; empty when it exited before it was ready (a failed start). */
  status: string;
  /** VmLck of the QEMU process while it was paused, KiB; absent when it never got there. */
  vmLckKiB?: number;
  /** QEMU's exit status (0 after `quit`; 1 when it failed to start, e.g. a refused VFIO_MAP_DMA). */
  exitStatus: number;
  /** The monitor's output (`info status`). */
  monitor: string;
  args: string[];
}

export async function labRun(root: string, files: string[], options: LabRunOptions = {}): Promise<LabReport> {
  const kernelName = options.kernel;
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
  if (runnable.length === 0 && !options.qemu) return { outcomes };
  const kernel = fetchKernel(kernelName);
  const devices = Math.max(1, ...runnable.map((r) => r.plan.groups.length));
  const mdevs = [...new Set(runnable.flatMap((r) => r.plan.mdevs.map((m) => m.uuid)))];
  const guest = await runGuest(root, kernel, runnable.map((r) => r.plan.steps), devices, mdevs, {
    capture: options.capture === true,
    ...(options.qemu ? { qemu: options.qemu } : {}),
  });
  const split = options.capture || options.qemu ? capturedWorkloads(guest.files) : [];
  const captures = split.filter((p) => p.comm === CAPTURED_COMMS[0]);
  if (options.capture && captures.length !== runnable.length) {
    throw new LabError(`the capture has ${captures.length} helper runs for ${runnable.length} traces: ${guest.files.get('capture-all.err') ?? ''}`);
  }
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
    const outcome: LabOutcome = {
      file: r.file,
      observed: observedTrace(r.objects, results, { kernel: guest.kernel, kernelPackage: kernel.package, machine: MACHINE, groups }),
    };
    if (options.capture) {
      outcome.captured = captures[i]!.lines.join('\n') + '\n';
      outcome.captureLog = guest.files.get('capture-all.err') ?? '';
      outcome.attachMs = guest.attachMs.find((a) => a.name === 'all')?.ms;
    }
    outcomes.push(outcome);
  });
  const report: LabReport = { kernel: guest.kernel, kernelPackage: kernel.package, bootSeconds: guest.seconds, outcomes };
  if (options.qemu) report.qemu = qemuOutcome(guest.files, split, options.qemu);
  return report;
}

/** The run's one capture, cut into its workloads. */
function capturedWorkloads(files: Map<string, string>): ReturnType<typeof splitCapture> {
  const text = files.get('capture-all');
  if (text === undefined) throw new LabError(`the guest sent no capture: ${files.get('capture-all.err') ?? ''}`);
  return splitCapture(text);
}

function qemuOutcome(files: Map<string, string>, split: ReturnType<typeof splitCapture>, spec: QemuSpec): QemuOutcome {
  const status = files.get('status.txt') ?? '';
  const m = /^VmLck:\s+(\d+) kB$/m.exec(status);
  if (status !== '' && !m) throw new LabError(`the lab's QEMU status has no VmLck line: ${status.slice(0, 500)}`);
  const exit = Number((files.get('qemu-exit.txt') ?? '').trim());
  if (!Number.isInteger(exit) || (files.get('qemu-exit.txt') ?? '').trim() === '') throw new LabError(`the guest did not say how QEMU exited:\n${(files.get('qemu.log') ?? '').slice(-2000)}`);
  const runs = split.filter((p) => p.comm === CAPTURED_COMMS[1]);
  if (runs.length !== 1) throw new LabError(`the capture has ${runs.length} QEMU processes, not 1: ${files.get('capture-all.err') ?? ''}`);
  return {
    log: files.get('qemu.log') ?? '',
    captured: runs[0]!.lines.join('\n') + '\n',
    status,
    ...(m ? { vmLckKiB: Number(m[1]) } : {}),
    exitStatus: exit,
    monitor: files.get('qemu-monitor.txt') ?? '',
    args: qemuArgs(spec),
  };
}
