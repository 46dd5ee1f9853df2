/**
 * Size limits (IngestOptions.limits; the daemon's and ingest's --max-*
 * options): a segment over one is quarantined with a reason naming the
 * limit and its option, and nothing of it is stored.
 */
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.js';
import { DEFAULT_LIMITS } from '../../src/store/limits.js';
import { map, setup, trace, type Ev } from '../helpers.js';
import { counts, ingestor, tempDir, writeSegments } from './helpers.js';

async function quarantined(events: Ev[], limits: Parameters<typeof ingestor>[1]) {
  const [f] = writeSegments(tempDir('limits'), [trace(events, { trace_id: 'lim/t' })]);
  const db = openStore(':memory:');
  const r = await ingestor(db, limits).ingest(f!);
  expect(r.status).toBe('quarantined');
  expect(db.inTransaction).toBe(false);
  // Only the quarantine's own rows.
  expect(counts(db)).toEqual({ traces: 0, segments: 1, findings: 0, locked_vm: 0, accounting: 0, segment_state: 0, files: 1 });
  expect(db.prepare('SELECT status, error FROM segments').get()).toEqual({ status: 'quarantined', error: r.reason });
  return r.reason;
}

const opens = (n: number): Ev[] => Array.from({ length: n }, (_, i) => ({ type: 'open', pid: 100, fd: 30 + i, path: '/dev/vfio/vfio' }));
const maps = (n: number): Ev[] => Array.from({ length: n }, (_, i) => map(BigInt(i + 1) << 21n, 1n << 21n));

describe('limits', () => {
  it('the defaults', () => {
    expect(DEFAULT_LIMITS).toEqual({ maxFileBytes: 8 * 1024 ** 3, maxEventsPerSegment: 50_000_000, maxContainers: 4096, maxMappings: 1_000_000, maxFindingsPerCode: 1000 });
  });

  it('events per segment (--max-events)', async () => {
    expect(await quarantined([...setup(), ...maps(5)], { maxEventsPerSegment: 6 })).toBe('seg0.jsonl: more than 6 events in one segment, the limit (--max-events)');
  });

  it('live containers per trace (--max-containers)', async () => {
    expect(await quarantined([...setup(), ...opens(4)], { maxContainers: 3 })).toBe('seg0.jsonl: trace lim/t holds 4 VFIO containers at seq 8, more than the limit of 3 (--max-containers)');
  });

  it('vfio_dma mappings per trace (--max-mappings), counted at the end of the segment too', async () => {
    expect(await quarantined([...setup(), ...maps(5)], { maxMappings: 4 })).toBe('seg0.jsonl: trace lim/t holds 5 vfio_dma mappings at seq 10, more than the limit of 4 (--max-mappings)');
  });

  it('uncompressed bytes per file (--max-file-size), from the reader', async () => {
    const reason = await quarantined([...setup(), ...maps(50)], { maxFileBytes: 2000 });
    expect(reason).toMatch(/^seg0\.jsonl:\d+: larger than the limit of 2000 bytes uncompressed \(--max-file-size\)$/);
  });

  it('within every limit: ingested', async () => {
    const [f] = writeSegments(tempDir('limits-ok'), [trace([...setup(), ...maps(4), ...opens(1)], { trace_id: 'lim/ok' })]);
    const db = openStore(':memory:');
    const r = await ingestor(db, { maxEventsPerSegment: 10, maxContainers: 2, maxMappings: 4 }).ingest(f!);
    expect(r.status).toBe('ingested');
    expect(r.events).toBe(10);
  });
});
