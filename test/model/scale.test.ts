import { describe, expect, it } from 'vitest';
import { TiB, codes, last, lockedVm, map, run, setup, unmap } from '../helpers.js';

describe('state scales with mappings, not bytes', () => {
  it('maps, checks and releases 64 TiB as one extent (2^34 pages, beyond any per-page model)', () => {
    const size = 64n * TiB;
    const r = run([...setup(), map(1n << 46n, size, 0x100000000000n)]);
    expect(last(r).ret).toBe(0);
    expect(lockedVm(r)).toBe(2 ** 34);
    const s = r.vfio!.backends()[0]!.snapshot();
    expect(s.domains[0]).toMatchObject({ mappedPages: 2 ** 34, entries: 1 });
    const r2 = run([...setup(), map(1n << 46n, size, 0x100000000000n), unmap(1n << 46n, size)]);
    expect(last(r2).out).toEqual({ size: '0x400000000000' });
    expect(lockedVm(r2)).toBe(0);
    expect(codes(r2)).toEqual([]);
  });

  it('replays a 1 TiB mapping into a second domain as one extent', () => {
    const r = run(
      [
        ...setup({ groups: [12, 14] }),
        map(0x10000000000n, TiB),
      ],
      { topology: { iommus: [{ id: 'a', cache_coherent: true }, { id: 'b', cache_coherent: false }], groups: [{ id: 12, iommu: 'a' }, { id: 14, iommu: 'b' }] } },
    );
    expect(last(r).ret).toBe(0);
    const s = r.vfio!.backends()[0]!.snapshot();
    expect(s.domains.map((d) => [d.mappedPages, d.entries])).toEqual([[2 ** 28, 1], [2 ** 28, 1]]);
  });
});
