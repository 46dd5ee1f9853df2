/** Round ticks and findings grouped by cause. */
import { describe, expect, it } from 'vitest';
import { causeOf, groupFindings, normaliseMessage } from '../../src/report/findings.js';
import { byteAxis, byteTickLabel, seqAxis } from '../../src/report/ticks.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

describe('ticks', () => {
  it('puts byte ticks at 1-2-5 steps of binary units, labelled exactly', () => {
    const a = byteAxis(2_147_090_432);
    expect(a.step).toBe(512 * MiB);
    expect(a.ticks.map(byteTickLabel)).toEqual(['0', '512 MiB', '1 GiB', '1.5 GiB', '2 GiB', '2.5 GiB']);
    expect(byteAxis(16 * MiB).ticks.map(byteTickLabel)).toEqual(['0', '5 MiB', '10 MiB', '15 MiB', '20 MiB']);
    expect(byteAxis(640 * 1024).ticks.map(byteTickLabel)).toEqual(['0', '200 KiB', '400 KiB', '600 KiB', '800 KiB']);
    expect(byteAxis(4 * GiB + 128 * 1024).ticks.map(byteTickLabel)).toEqual(['0', '1 GiB', '2 GiB', '3 GiB', '4 GiB', '5 GiB']);
    expect(byteAxis(3 * 2 ** 40).ticks.map(byteTickLabel)).toEqual(['0', '1 TiB', '2 TiB', '3 TiB', '4 TiB']);
    for (const max of [1, 4096, 777 * 1024, 3 * GiB, 2 ** 52]) {
      const ax = byteAxis(max);
      expect(ax.top).toBeGreaterThanOrEqual(max);
      expect(ax.ticks.length).toBeGreaterThanOrEqual(2);
      expect(ax.ticks.length).toBeLessThanOrEqual(12);
    }
    expect(byteTickLabel(1200 * MiB)).toBe('1,200 MiB');
    expect(byteTickLabel(1536 * MiB)).toBe('1.5 GiB');
  });

  it('puts seq ticks at round values inside the trace', () => {
    expect(seqAxis(1, 1_000_259).ticks).toEqual([200_000, 400_000, 600_000, 800_000, 1_000_000]);
    expect(seqAxis(1, 10).ticks).toEqual([2, 4, 6, 8, 10]);
    expect(seqAxis(1, 58).ticks).toEqual([10, 20, 30, 40, 50]);
    expect(seqAxis(5, 5).ticks).toEqual([5]);
  });
});

describe('findings grouped by cause', () => {
  it('takes the numbers, addresses and device UUIDs out of a message', () => {
    expect(normaliseMessage('Device 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 unpins iova 0x501000, which it has not pinned')).toBe(
      'Device <uuid> unpins iova 0x#, which it has not pinned',
    );
    expect(causeOf('Pin charged 32 pages again', { cause: 'pin' })).toBe('pin');
    expect(causeOf('Pin charged 32 pages again', {})).toBe('Pin charged # pages again');
  });

  it('counts each group with its first and last seq and the first message', () => {
    const rows = [];
    for (let i = 0; i < 100_000; i++) rows.push({ backend: i % 2 ? 'rfc-v5' : 'upstream', code: 'UNPIN_NOT_PINNED', severity: 'error', seq: 10 + i, message: `Device 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 unpins iova 0x${(i * 4096).toString(16)}, which it has not pinned`, details: {} });
    rows.push({ backend: 'upstream', code: 'ACCT_LIMIT', severity: 'warning', seq: 7, message: 'Cannot pin 5 pages', details: {} });
    const g = groupFindings(rows, ['upstream', 'rfc-v5']);
    expect(g.map((x) => [x.backend, x.code, x.count, x.first_seq, x.last_seq])).toEqual([
      ['upstream', 'UNPIN_NOT_PINNED', 50_000, 10, 100_008],
      ['upstream', 'ACCT_LIMIT', 1, 7, 7],
      ['rfc-v5', 'UNPIN_NOT_PINNED', 50_000, 11, 100_009],
    ]);
    expect(g[0]!.message).toBe('Device 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 unpins iova 0x0, which it has not pinned');
  });
});
