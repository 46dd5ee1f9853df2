/** Trace files for daemon tests: a churn capture cut into segments, and a real daemon process. */
import { type ChildProcess, spawn } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';

const hx = (v: bigint) => '0x' + v.toString(16);

/**
 * A vIOMMU-style capture of `segments` segments of `perSegment` events:
 * 256 slots of 2 MiB mapped, unmapped and mapped again, with a process
 * limit that a few maps exceed (so findings appear).
 */
export function churnSegments(traceId: string, segments: number, perSegment: number): string[] {
  const out: string[] = [];
  let seq = 0;
  const lines: string[] = [];
  const push = (o: Record<string, unknown>) => lines.push(JSON.stringify({ seq: ++seq, ...o }));
  const pid = 7;
  push({ type: 'process', pid, op: 'start', memlock_limit: hx(400n << 20n) });
  push({ type: 'open', pid, fd: 3, path: '/dev/vfio/vfio' });
  push({ type: 'open', pid, fd: 4, path: '/dev/vfio/1' });
  push({ type: 'ioctl', pid, fd: 4, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 3 } });
  push({ type: 'ioctl', pid, fd: 3, cmd: 'VFIO_SET_IOMMU', arg: 'VFIO_TYPE1v2_IOMMU' });
  const mapped = new Set<number>();
  let i = 0;
  while (lines.length < segments * perSegment) {
    const slot = (i * 37) % 256;
    const iova = hx(BigInt(slot + 1) << 21n);
    if (mapped.has(slot)) {
      push({ type: 'ioctl', pid, fd: 3, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: [], iova, size: '0x200000' } });
      mapped.delete(slot);
    } else {
      push({ type: 'ioctl', pid, fd: 3, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: ['READ', 'WRITE'], vaddr: hx(0x7f0000000000n + (BigInt(slot) << 21n)), iova, size: '0x200000' } });
      mapped.add(slot);
    }
    i++;
  }
  for (let s = 0; s < segments; s++) {
    const header: Record<string, unknown> = { type: 'header', format: 'vfio-trace', version: 1, trace_id: traceId, segment: s };
    out.push([JSON.stringify(header), ...lines.slice(s * perSegment, (s + 1) * perSegment)].join('\n') + '\n');
  }
  return out;
}

/** Drops a file the robust way: written as name.tmp, then renamed in. */
export function drop(dir: string, name: string, text: string): string {
  const tmp = join(dir, `${name}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, join(dir, name));
  return join(dir, name);
}

export interface DaemonProc {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  /** Everything on stderr so far. */
  stderr(): string;
  waitFor(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

const root = new URL('../..', import.meta.url).pathname;

export interface StartOptions {
  /** Run as this user (root tests DAC failures through a daemon that is not root). */
  uid?: number;
  gid?: number;
  cwd?: string;
  env?: Record<string, string>;
}

/** The environment without the developer's PINLEDGER_* variables. */
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PINLEDGER_'))) as Record<string, string>;

/** Every daemon started here, so a test file can kill what its tests left running (afterEach(killLeftDaemons)). */
const started: DaemonProc[] = [];

/** Kills (SIGKILL) every daemon started so far that is still running. */
export function killLeftDaemons(): void {
  for (const d of started.splice(0)) if (d.child.exitCode === null) d.child.kill('SIGKILL');
}

export function startDaemon(watch: string, db: string, extra: string[] = [], opts: StartOptions = {}): DaemonProc {
  const child = spawn(process.execPath, [join(root, 'bin/pinledger.js'), 'daemon', '--watch', watch, '--db', db, '--stable-ms', '150', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...baseEnv, ...opts.env },
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    ...(opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.gid ?? opts.uid }),
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let l: Record<string, unknown>;
    try {
      l = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    logs.push(l);
    for (const w of [...waiters]) {
      if (w.pred(l)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const proc: DaemonProc = {
    child,
    logs,
    stderr: () => stderr,
    exited,
    waitFor(pred, timeoutMs = 20000) {
      const hit = logs.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out; logs: ${JSON.stringify(logs.slice(-5))} stderr: ${stderr.slice(-500)}`)), timeoutMs);
        waiters.push({ pred, resolve: (l) => (clearTimeout(t), resolve(l)) });
      });
    },
  };
  started.push(proc);
  return proc;
}

/** The intake ledger, in a stable order, without the times. */
export function ledger(dbFile: string): { name: string; status: string; reason: string | null; trace_id: string | null; segment: number | null; moved_to: string | null }[] {
  const db = new Database(dbFile, { readonly: true });
  try {
    return db.prepare('SELECT name, status, reason, trace_id, segment, moved_to FROM files ORDER BY name, id').all() as ReturnType<typeof ledger>;
  } finally {
    db.close();
  }
}

/** The nobody user: a daemon that is not root, for permission failures root would not see. */
export const NOBODY = 65534;

/** A header line and events for a tiny valid trace of its own trace id (segment `segment`). */
export function tinyTrace(traceId: string, segment = 0, firstSeq = 1, extraHeader: Record<string, unknown> = {}): string {
  const h = { type: 'header', format: 'vfio-trace', version: 1, trace_id: traceId, segment, page_size: 4096, ...extraHeader };
  const evs = [
    { type: 'process', pid: 7, op: 'start', memlock_limit: 'unlimited' },
    { type: 'open', pid: 7, fd: 3, path: '/dev/vfio/vfio' },
  ];
  return [JSON.stringify(h), ...evs.slice(0, segment === 0 ? 2 : 0).map((e, i) => JSON.stringify({ seq: firstSeq + i, ...e }))].join('\n') + '\n';
}
