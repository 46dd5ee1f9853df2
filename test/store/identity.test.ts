/**
 * A segment continues a trace only when its header agrees with segment 0's:
 * host, page size and topology (which a later segment may omit). Otherwise
 * it is quarantined with the field named, and nothing of the trace changes.
 * The same trace_id from two hosts at segment 0: the second is quarantined
 * as already ingested, naming both hosts.
 */
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.js';
import { counts, dump, ingestor, tempDir, writeSegments } from './helpers.js';

const TOPOLOGY = {
  iommus: [{ id: 'dmar0', pgsize_bitmap: '0x40201000', cache_coherent: true, interrupt_remapping: true, aperture: ['0x0', '0xffffffffffff'], reserved: [] }],
  groups: [{ id: 1, iommu: 'dmar0', devices: ['0000:01:00.0'] }],
};

/** A segment: its header fields over the defaults, and `n` events from seq `first`. */
function segment(traceId: string, seg: number, header: Record<string, unknown>, first: number, n = 3): string {
  const h = { type: 'header', format: 'vfio-trace', version: 1, trace_id: traceId, segment: seg, page_size: 4096, ...header };
  const lines = [JSON.stringify(h)];
  for (let i = 0; i < n; i++) lines.push(JSON.stringify({ type: 'open', seq: first + i, pid: 7, fd: 3 + i + seg * 10, path: '/dev/vfio/vfio' }));
  return lines.join('\n') + '\n';
}

async function continuing(seg0: Record<string, unknown>, seg1: Record<string, unknown>) {
  const dir = tempDir('identity');
  const [a, b] = writeSegments(dir, [segment('id/t', 0, seg0, 1), segment('id/t', 1, seg1, 4)]);
  const db = openStore(':memory:');
  const ing = ingestor(db);
  expect((await ing.ingest(a!)).status).toBe('ingested');
  const before = dump(db);
  const r = await ing.ingest(b!);
  return { db, r, before };
}

describe('a segment whose header disagrees with its trace', () => {
  it('another host: quarantined, naming both hosts', async () => {
    const { db, r, before } = await continuing({ host: 'hv-a', topology: TOPOLOGY }, { host: 'hv-b' });
    expect(r.status).toBe('quarantined');
    expect(r.reason).toBe('seg1.jsonl:1: field host: trace id/t comes from host hv-a, this segment from host hv-b');
    const after = dump(db);
    expect(after.traces).toEqual(before.traces);
    expect(after.segment_state).toEqual(before.segment_state);
    expect(db.prepare('SELECT status, error FROM segments ORDER BY id').all()).toEqual([
      { status: 'ingested', error: null },
      { status: 'quarantined', error: r.reason },
    ]);
  });

  it('a host where segment 0 named none', async () => {
    const { r } = await continuing({}, { host: 'hv-b' });
    expect(r.reason).toBe('seg1.jsonl:1: field host: trace id/t comes from host (none named), this segment from host hv-b');
  });

  it('another page size', async () => {
    const { r } = await continuing({ host: 'hv-a' }, { host: 'hv-a', page_size: 65536 });
    expect(r.status).toBe('quarantined');
    expect(r.reason).toBe('seg1.jsonl:1: field page_size: trace id/t has page size 4096, this segment 65536');
  });

  it('another topology; an omitted one continues', async () => {
    const other = { ...TOPOLOGY, groups: [{ id: 2, iommu: 'dmar0', devices: ['0000:02:00.0'] }] };
    const { r } = await continuing({ host: 'hv-a', topology: TOPOLOGY }, { host: 'hv-a', topology: other });
    expect(r.status).toBe('quarantined');
    expect(r.reason).toBe('seg1.jsonl:1: field topology: trace id/t has another topology (from segment 0); a later segment may omit it but not change it');
    const same = await continuing({ host: 'hv-a', topology: TOPOLOGY }, { host: 'hv-a', topology: TOPOLOGY });
    expect(same.r.status).toBe('ingested');
    const omitted = await continuing({ host: 'hv-a', topology: TOPOLOGY }, { host: 'hv-a' });
    expect(omitted.r.status).toBe('ingested');
    expect(omitted.db.prepare('SELECT host, topology, identity_recorded FROM traces').get()).toEqual({
      host: 'hv-a',
      topology:
        '{"groups":[{"devices":["0000:01:00.0"],"id":1,"iommu":"dmar0","kind":"iommu"}],"iommus":[{"aperture":{"end":"0xffffffffffff","start":"0x0"},"cacheCoherent":true,"id":"dmar0","interruptRemapping":true,"pgsizeBitmap":"0x40201000","reserved":[]}]}',
      identity_recorded: 1,
    });
  });

  it('the same trace_id at segment 0 from two hosts: the second is quarantined as already ingested, naming both', async () => {
    const dir = tempDir('identity-two');
    const [a, b] = writeSegments(dir, [segment('id/two', 0, { host: 'hv-a' }, 1), segment('id/two', 0, { host: 'hv-b' }, 1, 4)]);
    const db = openStore(':memory:');
    const ing = ingestor(db);
    expect((await ing.ingest(a!)).status).toBe('ingested');
    const r = await ing.ingest(b!);
    expect(r.status).toBe('quarantined');
    expect(r.reason).toBe('seg1.jsonl:1: field segment: segment 0 of trace id/two was already ingested from another file (the trace from host hv-a, this segment from host hv-b)');
    expect(counts(db)).toMatchObject({ traces: 1, segments: 2, files: 2 });
    expect(db.prepare('SELECT events FROM traces').get()).toEqual({ events: 3 });
  });
});
