/**
 * `state`: containers, groups, domains, DMA mappings and pins at the end of a
 * trace (the stored replay) or just after event SEQ (the segment files replayed
 * again, each checked against what was ingested first: src/store/rebuild.ts).
 */
import type { Argv, CommandModule } from 'yargs';
import type { DifferentialReplay } from '../../model/replay/differential.js';
import type { BackendSnapshot } from '../../model/vfio/driver.js';
import { replayAt } from '../../store/rebuild.js';
import { requireTrace } from '../../store/queries.js';
import { formatPages, formatSize, table } from '../format.js';
import { dbOption, openDb, requirePid } from '../query-args.js';
import { nonEmpty, wholeNumber } from '../usage-error.js';
import { type Common, json, jsonOption, outText } from './output.js';

type StateArgs = Common & { trace: string; at?: number; pid?: number };

/** The backend's view in the snake_case of every --json document. */
function snakeSnapshot(b: BackendSnapshot) {
  return {
    design: b.design,
    v2: b.v2,
    dma_avail: b.dmaAvail,
    pgsize_bitmap: b.pgsizeBitmap,
    iova_ranges: b.iovaRanges.map((r) => [r.start, r.end]),
    domains: b.domains.map((d) => ({ id: d.id, iommu: d.unit, groups: d.groups, cache_coherent: d.cacheCoherent, mapped_pages: d.mappedPages, extents: d.entries })),
    mediated_groups: b.emulatedGroups,
    dmas: b.dmas.map((m) => ({ iova: m.iova, size: m.size, vaddr: m.vaddr, prot: m.prot, pid: m.pid, pinned: m.iommuMapped, charged_pages: m.charged, external_pins: m.vpfns })),
  };
}

function describeState(d: DifferentialReplay) {
  return Object.fromEntries(
    [...d.replayers].map(([name, r]) => {
      const core = r.vfio!;
      const containers = [...core.containers].map((c) => ({
        id: c.id,
        pid: c.pid,
        fd_open: c.fdOpen,
        groups: c.groups.map((g) => g.spec.id),
        backend: c.backend ? snakeSnapshot(c.backend.snapshot()) : null,
      }));
      const groups = [...core.groups.values()].map((g) => ({
        id: g.spec.id,
        kind: g.spec.kind,
        open: g.fileOpen,
        container: g.container?.id ?? null,
        devices_open: [...g.openDevices],
      }));
      const processes = [...(r.modelEnv?.processes.values() ?? [])].map((p) => ({ pid: p.pid, locked_vm: p.lockedVm, memlock_limit: p.memlockLimit === 'unlimited' ? 'unlimited' : p.memlockLimit, cap_ipc_lock: p.capIpcLock }));
      return [name, { seq: r.lastSeq, processes, containers, groups }];
    }),
  );
}

/** `state --pid P`: that process, its containers and the groups in them. */
function onlyPid(st: ReturnType<typeof describeState>, pid: number): ReturnType<typeof describeState> {
  return Object.fromEntries(
    Object.entries(st).map(([name, s]) => {
      const containers = s.containers.filter((c) => c.pid === pid);
      const ids = new Set(containers.map((c) => c.id));
      return [name, { ...s, processes: s.processes.filter((p) => p.pid === pid), containers, groups: s.groups.filter((g) => g.container !== null && ids.has(g.container)) }];
    }),
  );
}

export const stateCommand: CommandModule<object, StateArgs> = {
  command: 'state',
  describe: 'Containers, groups, domains, DMA mappings and pins at the end of a trace, or just after event SEQ',
  builder: (y: Argv) =>
    y
      .option('db', dbOption)
      .option('json', jsonOption)
      .option('trace', { type: 'string', demandOption: true, coerce: nonEmpty('--trace') })
      .option('at', { type: 'number', describe: 'just after this seq (replays the segment file again)', coerce: wholeNumber('--at') })
      .option('pid', { type: 'number', describe: 'only this process and its containers', coerce: wholeNumber('--pid') })
      .example('$0 state --trace host42/vm-7f3a --at 1200', 'what was mapped after event 1200') as unknown as Argv<StateArgs>,
  handler: async (a) => {
    const db = openDb(a.db);
    const pageSize = requireTrace(db, a.trace).page_size;
    requirePid(db, a.trace, a.pid);
    const d = await replayAt(db, a.trace, a.at);
    const st = a.pid === undefined ? describeState(d) : onlyPid(describeState(d), a.pid);
    if (a.json) return json({ trace_id: a.trace, at: a.at ?? null, backends: st });
    const lines: string[] = [];
    for (const [name, s] of Object.entries(st)) {
      lines.push(`${name} after seq ${s.seq}`);
      lines.push(table(s.processes.map((p) => [String(p.pid), formatPages(p.locked_vm, pageSize), typeof p.memlock_limit === 'string' ? p.memlock_limit : formatSize(p.memlock_limit)]), ['pid', 'locked_vm', 'RLIMIT_MEMLOCK']));
      for (const c of s.containers) {
        const b = c.backend;
        lines.push(`  container ${c.id} (pid ${c.pid}${c.fd_open ? '' : ', fd closed'}): groups ${c.groups.join(', ') || 'none'}${b ? `, ${b.v2 ? 'type1v2' : 'type1'}, ${b.dmas.length} mappings, dma_avail ${b.dma_avail}` : ', no backend'}`);
        if (!b) continue;
        for (const dom of b.domains) lines.push(`    domain ${dom.id} on ${dom.iommu}: groups ${dom.groups.join(', ')}, ${dom.mapped_pages} pages mapped in ${dom.extents} extents`);
        if (b.mediated_groups.length) lines.push(`    mediated groups: ${b.mediated_groups.join(', ')}`);
        if (b.dmas.length) {
          lines.push(
            table(
              b.dmas.map((m) => ['    0x' + m.iova.toString(16), formatSize(m.size), '0x' + m.vaddr.toString(16), String(m.pid), m.pinned ? 'yes' : 'no', String(m.charged_pages), String(m.external_pins)]),
              ['    iova', 'size', 'vaddr', 'pid', 'pinned', 'charged', 'ext pins'],
            ),
          );
        }
      }
    }
    outText(lines.join('\n'));
  },
};
