import { describe, expect, it } from 'vitest';
import { GiB, codes, last, lockedVm, map, run, setup, unmap } from './helpers.js';

describe('replay', () => {
  it('maps and unmaps 1 GiB', () => {
    const r = run([...setup(), map(0n, GiB)]);
    expect(last(r).ret).toBe(0);
    expect(lockedVm(r)).toBe(262144);
    const r2 = run([...setup(), map(0n, GiB), unmap(0n, GiB)]);
    expect(last(r2)).toEqual({ seq: 7, ret: 0, out: { size: '0x40000000' } });
    expect(lockedVm(r2)).toBe(0);
    expect(codes(r2)).toEqual([]);
  });
});
