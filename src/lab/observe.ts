/**
 * The observed trace: the input trace with `ret`, `out` and `locked_vm`
 * filled in from what the lab's kernel did, and a header naming that
 * kernel and the guest devices that stood in for the trace's groups. Pure.
 */
import { errnoName } from '../model/errno.js';

type Json = Record<string, unknown>;

/** One helper result line: `R SEQ RET VMLCK_KB key=value...`. */
export interface StepResult {
  seq: number;
  ret: number;
  vmlckKb: number;
  kv: Record<string, string>;
}

export function parseResult(line: string): StepResult | undefined {
  const m = /^R (\d+) (-?\d+) (-?\d+)(.*)$/.exec(line.trim());
  if (!m) return undefined;
  const kv: Record<string, string> = {};
  for (const part of m[4]!.trim().split(/\s+/)) {
    const eq = part.indexOf('=');
    if (eq > 0) kv[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return { seq: Number(m[1]), ret: Number(m[2]), vmlckKb: Number(m[3]), kv };
}

/** What the guest stood in for the trace's groups with. */
export interface LabHeader {
  kernel: string;
  kernelPackage: string;
  machine: string;
  groups: { trace: number; guest: number; device: string }[];
}

function outOf(cmd: string, kv: Record<string, string>): Json | undefined {
  switch (cmd) {
    case 'VFIO_IOMMU_GET_INFO': {
      const out: Json = {};
      if (kv.pgsizes) out.iova_pgsizes = kv.pgsizes;
      if (kv.ranges) out.iova_ranges = kv.ranges.split(',').map((r) => r.split('-'));
      if (kv.dma_avail) out.dma_avail = Number(kv.dma_avail);
      return out;
    }
    case 'VFIO_IOMMU_UNMAP_DMA':
      return kv.size ? { size: kv.size } : undefined;
    case 'VFIO_GROUP_GET_STATUS':
      return { flags: (kv.flags ?? '').split(',').filter((f) => f !== '') };
    default:
      return undefined;
  }
}

/**
 * Fills each event that ran with the kernel's outcome. Events the helper
 * does not run (a direct device's open) and those whose outcome the format
 * does not carry (process, mmap, munmap) keep what they had.
 */
export function observedTrace(objects: Json[], results: Map<number, StepResult>, lab: LabHeader): Json[] {
  const [header, ...events] = objects as [Json, ...Json[]];
  const pageKb = Number(header.page_size ?? 4096) / 1024;
  const h: Json = {
    ...header,
    kernel: lab.kernel,
    captured_by: 'pinledger lab run',
    lab: { kernel: lab.kernel, kernel_package: lab.kernelPackage, machine: lab.machine, groups: lab.groups },
  };
  const out: Json[] = [h];
  for (const e of events) {
    const r = results.get(e.seq as number);
    if (!r || e.type === 'process' || e.type === 'mmap' || e.type === 'munmap') {
      out.push(e);
      continue;
    }
    if (e.type === 'device') {
      // A device event has no result of its own in the format: only locked_vm.
      out.push({ ...e, locked_vm: r.vmlckKb / pageKb });
      continue;
    }
    const o: Json = { ...e };
    delete o.ret;
    delete o.out;
    delete o.locked_vm;
    // A failure by its name where pinledger knows it, else as -errno.
    o.ret = r.ret < 0 && !errnoName(r.ret).startsWith('errno') ? errnoName(r.ret) : r.ret;
    const fields = e.type === 'ioctl' && r.ret >= 0 ? outOf(e.cmd as string, r.kv) : undefined;
    if (fields) o.out = fields;
    // mlockall(MCL_CURRENT) locks what the trace describes and what it does not (the program, its
    // stack and libraries): the helper measures the pages it newly locked (VmLck after minus before).
    if (e.type === 'mlockall') {
      delete o.pages;
      if (r.ret === 0 && ((e.flags as string[] | undefined) ?? []).includes('CURRENT') && r.kv.pages !== undefined) o.pages = Number(r.kv.pages);
    }
    o.locked_vm = r.vmlckKb / pageKb;
    out.push(o);
  }
  return out;
}
