/**
 * File descriptors as the kernel keeps them: each process's fd table maps
 * fds to open files (struct file), and an open file counts the fds, in every
 * process, that refer to it (f_count). dup and fork add references; the
 * release fop runs when the last one goes (fput), not at each close.
 */
import type { Container, GroupState } from './core.js';

/** An open VFIO file and how many fds refer to it. */
export type OpenFile =
  | { kind: 'container'; container: Container; refs: number }
  | { kind: 'group'; group: GroupState; refs: number }
  | { kind: 'device'; dev: string; group: GroupState; refs: number };

/** Every traced process's fds. */
export type FdTables = Map<number, Map<number, OpenFile>>;

/** One more fd refers to the file (get_file). A state saved before references were counted restores without `refs`: one fd each. */
export function addRef(f: OpenFile): void {
  f.refs = (f.refs ?? 1) + 1;
}

/** One fd less (fput): true when it was the last, and the file is to be released. */
export function dropRef(f: OpenFile): boolean {
  f.refs = (f.refs ?? 1) - 1;
  return f.refs === 0;
}

/** Whether any fd of `pid` refers to the file. */
export function holds(fds: FdTables, pid: number, f: OpenFile): boolean {
  for (const x of fds.get(pid)?.values() ?? []) if (x === f) return true;
  return false;
}

/** Some process that still has an fd of the file. */
export function holderOf(fds: FdTables, f: OpenFile): number | undefined {
  for (const [pid, t] of fds) for (const x of t.values()) if (x === f) return pid;
  return undefined;
}

/** Whether a process other than `pid` has an fd of the group's file. */
export function groupHeldElsewhere(fds: FdTables, pid: number, g: GroupState): boolean {
  for (const [other, t] of fds) {
    if (other === pid) continue;
    for (const f of t.values()) if (f.kind === 'group' && f.group === g) return true;
  }
  return false;
}

/** dup_fd at fork: the child's table refers to the parent's files, one more reference each. */
export function copyTable(parent: ReadonlyMap<number, OpenFile>): Map<number, OpenFile> {
  const table = new Map<number, OpenFile>();
  for (const [fd, f] of parent) {
    addRef(f);
    table.set(fd, f);
  }
  return table;
}
