/**
 * The memlock answer as the operator will use it: one sentence per process
 * with the RLIMIT_MEMLOCK the trace needed (in KiB, what `ulimit -l` and
 * libvirt's `<memtune><hard_limit unit='KiB'>` take, and in bytes), the
 * limit that was in force, the first operation it refused, and libvirt's own
 * default for the VM when the guest memory is known.
 */
import { memlockBytes, memlockShort } from '../model/memlock.js';
import type { ProcessAccounting } from '../model/replay/replayer.js';
import { formatByteCount, formatKiB, formatSize, thousands } from './size.js';

export { memlockShort };

export interface MemlockAnswer {
  pid: number;
  /** Bytes: the peak locked_vm of the replay with RLIMIT_MEMLOCK unlimited. */
  required: bigint;
  /** Bytes: the limit in force, or null when none applied (unlimited, or CAP_IPC_LOCK). */
  limit: bigint | null;
  /** Why no limit applied, when `limit` is null. */
  capIpcLock: boolean;
  /** Operations refused because of RLIMIT_MEMLOCK, and the first of them. */
  refusals: number;
  firstRefusal: { seq: number; event: string } | null;
  /** Containers this process attached groups to: libvirt's per-device factor under a vIOMMU. */
  containers: number;
}


const GiB = 1n << 30n;

/**
 * libvirt's qemuDomainGetMemLockLimitBytes on x86 without a configured
 * hard_limit or <locked/>: factor x guest memory + 1 GiB, where the factor
 * counts VFIO/mdev devices as 1, or one per device under a vIOMMU (QEMU
 * gives each device behind a vIOMMU its own container, so the containers a
 * process used are that count). NVMe disks and vDPA devices, which add to
 * the factor, are not visible in a VFIO trace. Null without devices: libvirt
 * then leaves the limit alone.
 */
export function libvirtDefault(guestMemory: bigint, containers: number): { bytes: bigint; factor: number } | null {
  if (containers < 1) return null;
  return { bytes: BigInt(containers) * guestMemory + GiB, factor: containers };
}

/** "VFIO_IOMMU_MAP_DMA" is how the uapi names it; pins are the vendor driver's. */
function operation(event: string): string {
  return event === 'pin' ? 'a vendor-driver pin' : event;
}

function refusedClause(a: MemlockAnswer): string {
  if (!a.firstRefusal) return '';
  const more = a.refusals > 1 ? ` and ${thousands(a.refusals - 1)} later operation${a.refusals === 2 ? '' : 's'}` : '';
  return `; ${operation(a.firstRefusal.event)} at seq ${a.firstRefusal.seq}${more} failed because of it`;
}

function limitClause(a: MemlockAnswer): string {
  if (a.limit === null) return a.capIpcLock ? '; no limit applied (CAP_IPC_LOCK)' : '; no limit was in force (unlimited)';
  const short = memlockShort(a);
  return `; the limit in force was ${formatKiB(a.limit)}, ${short === 0n ? 'enough' : `short by ${formatKiB(short)}`}`;
}

function libvirtClause(a: MemlockAnswer, guestMemory: bigint | null): string {
  if (guestMemory === null) return '';
  const d = libvirtDefault(guestMemory, a.containers);
  if (!d) return `; libvirt would leave the limit alone (no VFIO container in use)`;
  const verdict = d.bytes >= a.required ? 'enough' : `short by ${formatKiB(a.required - d.bytes)}`;
  return `; libvirt's default for this ${formatSize(guestMemory)} guest is ${formatKiB(d.bytes)} (${d.factor} x guest memory + 1 GiB), ${verdict}`;
}

/** A limit in KiB, then bytes, then a short size when it says more than the KiB: "2,096,768 KiB (2,147,090,432 bytes, 2.0 GiB)". */
export function formatLimit(bytes: bigint): string {
  const size = formatSize(bytes);
  const short = size.endsWith(' KiB') || size.endsWith(' B') ? '' : `, ${size}`;
  return `${formatKiB(bytes)} (${formatByteCount(bytes)}${short})`;
}

function needs(required: bigint): string {
  if (required === 0n) return 'locked no memory through VFIO: any RLIMIT_MEMLOCK will do';
  return `needs RLIMIT_MEMLOCK >= ${formatLimit(required)}`;
}

/**
 * "pid 4242 needs RLIMIT_MEMLOCK >= 2,096,768 KiB (2,147,090,432 bytes,
 * 2.0 GiB); the limit in force was 65,536 KiB, short by 2,031,232 KiB;
 * VFIO_IOMMU_MAP_DMA at seq 7 failed because of it"
 */
export function memlockSentence(a: MemlockAnswer, guestMemory: bigint | null = null): string {
  return (
    `pid ${a.pid} ${needs(a.required)}` +
    limitClause(a) +
    refusedClause(a) +
    libvirtClause(a, guestMemory)
  );
}

/** The answer of one stored accounting row (src/store/queries.ts). */
export function answerOfRow(r: {
  pid: number;
  memlock_required: number;
  memlock_limit: number | null;
  cap_ipc_lock: boolean;
  limit_refusals: number | null;
  first_refusal: { seq: number; event: string } | null;
  containers: number;
}): MemlockAnswer {
  return {
    pid: r.pid,
    required: BigInt(r.memlock_required),
    limit: r.memlock_limit === null ? null : BigInt(r.memlock_limit),
    capIpcLock: r.cap_ipc_lock,
    refusals: r.limit_refusals ?? 0,
    firstRefusal: r.first_refusal,
    containers: r.containers,
  };
}

/** The answer of one process of a replay. */
export function answerOfAccounting(a: ProcessAccounting, pageShift: bigint): MemlockAnswer {
  const m = memlockBytes(a, pageShift);
  return {
    pid: a.pid,
    required: m.required,
    limit: m.limit,
    capIpcLock: a.capIpcLock,
    refusals: a.refusals?.count ?? 0,
    firstRefusal: a.refusals ? { seq: a.refusals.firstSeq, event: a.refusals.firstEvent } : null,
    containers: a.vfioContainers,
  };
}

/**
 * What goes before a design's sentence: nothing for the one deciding
 * design, its name when several decide, and "NAME (comparison): " for the
 * designs shown for comparison.
 */
export function sentencePrefix(design: string, deciding: ReadonlySet<string>): string {
  if (!deciding.has(design)) return `${design} (comparison): `;
  return deciding.size > 1 ? `${design}: ` : '';
}
