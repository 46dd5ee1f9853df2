/** The memlock answer's arithmetic, in bytes. */
import type { ProcessAccounting } from './replay/replayer.js';

/** Bytes missing from the limit in force; 0 when it was enough or none applied (null). */
export function memlockShort(a: { required: bigint; limit: bigint | null }): bigint {
  return a.limit === null || a.limit >= a.required ? 0n : a.required - a.limit;
}

/**
 * A process's answer in bytes: what it needed, the limit in force (null
 * when none applied: unlimited, or CAP_IPC_LOCK, which bypasses it in
 * vfio_lock_acct's callers) and what that limit lacked.
 */
export function memlockBytes(a: ProcessAccounting, pageShift: bigint): { required: bigint; limit: bigint | null; short: bigint } {
  const required = BigInt(a.requiredPages) << pageShift;
  const limit = a.capIpcLock || a.limit === 'unlimited' ? null : BigInt(a.limit);
  return { required, limit, short: memlockShort({ required, limit }) };
}
