/**
 * The processes of a trace as the lab's helper runs them, for the plan:
 * the trace's first pid is helper process 0, every `process fork` child
 * the next index. Each has an fd table of open files (shared by `dup` and
 * copied by `fork`, as the kernel's struct file is), so that the plan can
 * tell what a descriptor is (container, group, device) and who holds a
 * device. Pure: no I/O.
 */

/** An open file (the kernel's struct file): one object, however many fds refer to it. */
export type OpenFile = { kind: 'container' } | { kind: 'group'; group: number } | { kind: 'device'; dev: string; group: number };

export interface LabProcess {
  pid: number;
  /** The helper's process index: 0 for the trace's first process, then forks in trace order. */
  index: number;
  fds: Map<number, OpenFile>;
  exited: boolean;
}

export class LabProcesses {
  readonly list: LabProcess[] = [];
  private readonly byPid = new Map<number, LabProcess>();

  /** The trace's first process. */
  first(pid: number): LabProcess {
    const p: LabProcess = { pid, index: 0, fds: new Map(), exited: false };
    this.list.push(p);
    this.byPid.set(pid, p);
    return p;
  }

  get(pid: number): LabProcess | undefined {
    return this.byPid.get(pid);
  }

  /** `process fork`: the child gets a copy of the fd table referring to the same open files. */
  fork(parent: LabProcess, pid: number): LabProcess {
    const p: LabProcess = { pid, index: this.list.length, fds: new Map(parent.fds), exited: false };
    this.list.push(p);
    this.byPid.set(pid, p);
    return p;
  }

  /** Whether any live process still refers to the open file (the kernel releases it on the last fput). */
  referenced(file: OpenFile): boolean {
    return this.list.some((p) => !p.exited && [...p.fds.values()].includes(file));
  }

  /** The process and fd through which a device's open file is held, if any. */
  deviceHolder(dev: string): { proc: LabProcess; fd: number } | undefined {
    for (const proc of this.list) {
      if (proc.exited) continue;
      for (const [fd, f] of proc.fds) if (f.kind === 'device' && f.dev === dev) return { proc, fd };
    }
    return undefined;
  }

  /** An fd of a live process that refers to one of the group's files (the first process's first). */
  groupFd(group: number): { proc: LabProcess; fd: number } | undefined {
    for (const proc of this.list) {
      if (proc.exited) continue;
      for (const [fd, f] of proc.fds) if (f.kind === 'group' && f.group === group) return { proc, fd };
    }
    return undefined;
  }
}
