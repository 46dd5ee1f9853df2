/**
 * The header of a trace imported from a QEMU log: what the log gave (the
 * groups, the format version its events need), what the command line told
 * (the kernel, the guest's memory, RLIMIT_MEMLOCK), what the import
 * inferred, and what no one knew (`import.unknown`).
 */

/** What a QEMU trace log cannot say; each entry starts with the trace field it concerns. */
const UNKNOWN = {
  ret: 'ret of maps and unmaps (QEMU traces attempts; only a failed map leaves an error line)',
  pid: 'pid (one process, pid 1)',
  fd: 'fd (container fd 3, groups from 4)',
  memlock_limit: 'memlock_limit (RLIMIT_MEMLOCK: unlimited; import --memlock-limit gives it)',
  cap_ipc_lock: 'cap_ipc_lock (none)',
  kernel: 'kernel (the host kernel, which picks the zero-page rule; import --kernel gives it)',
  vaddr: 'vaddr of vIOMMU mappings (synthetic)',
  flags: 'flags (READ-only for the firmware ROMs the import recognises, READ|WRITE for every other map, vIOMMU maps included)',
  mmap: 'mmap (only ROM and BAR host ranges are described, from inferences listed in import.inferred; guest RAM is not)',
  topology: 'topology.iommus (the default x86_64 unit)',
} as const;

/** `import.unknown`, less what the command line told. */
export function importUnknown(known: { memlockLimit: boolean; kernel?: boolean }): string[] {
  return Object.entries(UNKNOWN)
    .filter(([field]) => !(field === 'memlock_limit' && known.memlockLimit) && !(field === 'kernel' && known.kernel === true))
    .map(([, text]) => text);
}

export interface QemuHeaderInput {
  traceId: string;
  /** The log's file name. */
  file: string;
  version: 1 | 2;
  topology: { groups: Record<string, unknown>[] };
  /** `--kernel`: the host kernel's release, e.g. 6.1.0-57-amd64. */
  kernel?: string;
  /** `--guest-memory`, bytes. */
  guestMemory?: bigint;
  memlockKnown: boolean;
  inferred: string[];
}

export function qemuHeader(h: QemuHeaderInput): Record<string, unknown> {
  return {
    type: 'header',
    format: 'vfio-trace',
    version: h.version,
    trace_id: h.traceId,
    segment: 0,
    captured_by: 'pinledger import qemu-trace',
    ...(h.kernel === undefined ? {} : { kernel: h.kernel }),
    ...(h.guestMemory === undefined ? {} : { guest_memory: '0x' + h.guestMemory.toString(16) }),
    import: {
      from: 'qemu-trace',
      file: h.file,
      unknown: importUnknown({ memlockLimit: h.memlockKnown, kernel: h.kernel !== undefined }),
      ...(h.inferred.length === 0 ? {} : { inferred: h.inferred }),
    },
    topology: h.topology,
  };
}
