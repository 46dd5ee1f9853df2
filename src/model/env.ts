/**
 * What every part of the model reaches for: page size, module parameters,
 * topology, the processes, and where findings go. One per replay and backend.
 */
import type { ModuleParams } from './events.js';
import type { FindingCode, FindingSink } from './findings.js';
import type { Topology } from './iommu/topology.js';
import { Process } from './memory/process.js';

export class ModelEnv {
  readonly pageShift: bigint;
  readonly pageSize: bigint;
  readonly processes = new Map<number, Process>();

  constructor(
    pageSize: number,
    public params: ModuleParams,
    public topology: Topology,
    readonly findings: FindingSink,
  ) {
    this.pageSize = BigInt(pageSize);
    this.pageShift = BigInt(Math.log2(pageSize));
  }

  /** A process used before any `process start` is unlimited and without CAP_IPC_LOCK. */
  process(pid: number): Process {
    let p = this.processes.get(pid);
    if (!p) {
      p = new Process(pid, this.pageShift);
      this.processes.set(pid, p);
    }
    return p;
  }

  report(code: FindingCode, message: string, details?: Record<string, unknown>): void {
    this.findings.report(code, message, details);
  }

  /**
   * Charges or uncharges a process (vfio_lock_acct). An underflow is
   * clamped, as the kernel does, and reported.
   */
  account(pid: number, delta: number, bypassLimit: boolean): boolean {
    if (delta === 0) return true;
    const p = this.process(pid);
    const before = p.lockedVm;
    const r = p.charge(delta, bypassLimit, this.pageShift);
    if (r.underflow > 0) {
      this.report('ACCT_UNDERFLOW', `Cannot uncharge ${-delta} pages from pid ${pid}: only ${before} are charged`, {
        pid,
        uncharge: -delta,
        locked_vm: before,
      });
    }
    return r.ok;
  }
}
