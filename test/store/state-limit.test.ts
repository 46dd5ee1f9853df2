/**
 * A state too large to save (the 2.8-million-container trace of issue 15:
 * saveReplay's JSON.stringify throws RangeError "Invalid string length")
 * quarantines the segment with a reason naming the limits that bound the
 * state, rolls back, and the next file ingests: never a wedge. The throw is
 * simulated (a real one needs half a GiB of state).
 */
import { describe, expect, it, vi } from 'vitest';
import { openStore } from '../../src/store/db.js';
import { churnSegments } from '../daemon/fixtures.js';
import { counts, ingestor, tempDir, writeSegments } from './helpers.js';

const tooLong = { trace: '' };
vi.mock('../../src/model/state/snapshot.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/model/state/snapshot.js')>();
  return {
    ...real,
    saveReplay: (r: Parameters<typeof real.saveReplay>[0]) => {
      if (r.replayers.values().next().value?.traceId === tooLong.trace) throw new RangeError('Invalid string length');
      return real.saveReplay(r);
    },
  };
});

describe('a replay state too large to store', () => {
  it('is quarantined naming the limits; the next file ingests', async () => {
    const dir = tempDir('state-limit');
    const [big] = writeSegments(dir, churnSegments('state/big', 1, 20), 'big');
    const [next] = writeSegments(dir, churnSegments('state/next', 1, 20), 'next');
    tooLong.trace = 'state/big';
    const db = openStore(':memory:');
    const ing = ingestor(db);
    const r = await ing.ingest(big!);
    expect(r.status).toBe('quarantined');
    expect(r.reason).toBe(
      'big0.jsonl: the replay state of trace state/big is larger than the longest string this runtime can build (about 512 MiB), so it cannot be stored; --max-containers (4096) and --max-mappings (1000000) bound it',
    );
    expect(db.inTransaction).toBe(false);
    expect(counts(db)).toEqual({ traces: 0, segments: 1, findings: 0, locked_vm: 0, accounting: 0, segment_state: 0, files: 1 });
    expect((await ing.ingest(next!)).status).toBe('ingested');
  });
});
