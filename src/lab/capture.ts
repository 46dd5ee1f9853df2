/**
 * The project's own capture (tools/capture) in the lab guest: Debian's
 * bpftrace with its libraries, bash, and the capture scripts, and the init
 * script's functions that start it before a workload (waiting until it has
 * attached) and stop it after with SIGTERM, as an operator would, sending
 * the capture back on the second serial port.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle } from './bundle.js';
import { LabError } from './lab-error.js';

/** The processes the lab's capture follows: the helper, and QEMU (its comm is the first 15 characters). */
export const CAPTURED_COMMS = ['vfio-lab', 'qemu-system-x86'];

const FUNCTIONS = `mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
ln -sf /proc/self/fd /dev/fd
cap_start() {
  rm -f /tmp/cap.err /tmp/cap.jsonl
  TRACE_ID="lab/$1" /usr/bin/bash /capture/vfio-capture.sh --comm "$2" > /tmp/cap.jsonl 2> /tmp/cap.err &
  cap_pid=$!
  n=0
  while ! grep -q 'attached in' /tmp/cap.err 2>/dev/null; do
    n=$((n+1)); [ $n -gt 6000 ] && { echo "LAB-ERROR the capture did not attach in 20 minutes"; return 1; }
    kill -0 $cap_pid 2>/dev/null || { sendfile "capture-$1.err" /tmp/cap.err; echo "LAB-ERROR the capture did not start: $(tr '\\n' ' ' < /tmp/cap.err)"; return 1; }
    sleep 0.2
  done
  echo "ATTACH $1 $(sed -n 's/.*attached in \\([0-9]*\\) ms.*/\\1/p' /tmp/cap.err)"
}
cap_stop() {
  kill -TERM $cap_pid; wait $cap_pid; rc=$?
  sendfile "capture-$1.err" /tmp/cap.err
  [ $rc = 0 ] || echo "LAB-ERROR the capture exited $rc: $(tr '\\n' ' ' < /tmp/cap.err)"
  sendfile "capture-$1" /tmp/cap.jsonl
}`;

/** One capture for the whole run, following the helper and QEMU from their exec. */
export const captureInit = {
  functions: FUNCTIONS,
  start: `cap_start all ${CAPTURED_COMMS.join(',')}`,
  stop: 'cap_stop all',
};

export function captureFiles(root: string, b: Bundle): void {
  b.program('/usr/bin/bpftrace');
  b.program('/usr/bin/bash');
  for (const f of ['vfio-capture.sh', 'vfio-capture.bt', 'vfio-capture.awk']) {
    b.file(`capture/${f}`, readFileSync(join(root, 'tools', 'capture', f)), 0o100755);
  }
}

type Json = Record<string, unknown>;

/**
 * One capture of the whole run cut into one trace per process the lab
 * started (in order of their `process start`): each holds the capture's
 * header (trace_id suffixed) and the events from that process's start to
 * its exit, with its forked children's and the vendor-driver pins that
 * happened meanwhile (pins carry no pid; the lab runs one workload at a
 * time). Seqs are the capture's own.
 */
export function splitCapture(text: string): { comm: string; pid: number; lines: string[] }[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new LabError('the capture is empty (not even its header)');
  const header = JSON.parse(lines[0]!) as Json;
  if (header.type !== 'header') throw new LabError(`the capture's first line is not a header: ${lines[0]!.slice(0, 200)}`);
  const out: { comm: string; pid: number; lines: string[]; pids: Set<number>; open: boolean }[] = [];
  let current: (typeof out)[number] | undefined;
  for (const line of lines.slice(1)) {
    const e = JSON.parse(line) as Json;
    // The capture's end record (the capture finished) belongs to no workload.
    if (e.type === 'end') continue;
    if (e.type === 'process' && e.op === 'start' && (current === undefined || !current.open)) {
      const pid = e.pid as number;
      current = { comm: e.comm as string, pid, pids: new Set([pid]), open: true, lines: [] };
      const h: Json = { ...header, trace_id: `${header.trace_id as string}/${out.length}-${current.comm}` };
      // A workload is cut from a finished capture and has no end record of its own.
      delete h.end_record;
      current.lines.push(JSON.stringify(h));
      out.push(current);
    }
    if (!current || !current.open) throw new LabError(`the capture has an event outside any workload: ${line.slice(0, 200)}`);
    if (e.type === 'process' && e.op === 'fork') current.pids.add(e.pid as number);
    current.lines.push(line);
    if (e.type === 'process' && e.op === 'exit' && e.pid === current.pid) current.open = false;
  }
  return out.map(({ comm, pid, lines: l }) => ({ comm, pid, lines: l }));
}
