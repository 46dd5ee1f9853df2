import { describe, expect, it } from 'vitest';
import { Errno } from '../../src/model/errno.js';
import { GiB, MiB, hx, last, lockedVm, map, run, setup, unmap, type Ev } from '../helpers.js';

const EINVAL = -Errno.EINVAL;

function dmas(r: ReturnType<typeof run>): string[] {
  return r.vfio!.backends()[0]!.snapshot().dmas.map((d) => `${hx(d.iova)}+${hx(d.size)}`);
}

describe('VFIO_IOMMU_UNMAP_DMA argument checks (vfio_iommu_type1_unmap_dma, vfio_dma_do_unmap)', () => {
  const cases: [string, Ev][] = [
    ['a misaligned iova', unmap(0x800n, 0x1000n)],
    ['size 0', unmap(0n, 0n)],
    ['a misaligned size', unmap(0n, 0x1800n)],
    ['a range that wraps', unmap(0xfffffffffffff000n, 0x2000n)],
    ['ALL with a non-zero iova', unmap(0x1000n, 0n, ['ALL'])],
    ['ALL with a non-zero size', unmap(0n, 0x1000n, ['ALL'])],
    ['an unknown flag', unmap(0n, 0x1000n, ['FORCE'])],
    ['GET_DIRTY_BITMAP with ALL', unmap(0n, 0n, ['ALL', 'GET_DIRTY_BITMAP'])],
    ['GET_DIRTY_BITMAP while dirty tracking is off', unmap(0n, MiB, ['GET_DIRTY_BITMAP'])],
  ];
  for (const [what, ev] of cases) {
    it(`returns EINVAL for ${what}, without output, leaving the mapping`, () => {
      const r = run([...setup(), map(0n, MiB), ev]);
      expect(last(r)).toEqual({ seq: 7, ret: EINVAL });
      expect(lockedVm(r)).toBe(256);
      expect(dmas(r)).toEqual(['0x0+0x100000']);
    });
  }
});

describe('v2 unmap semantics', () => {
  const three = [map(0n, MiB), map(MiB, MiB), map(4n * MiB, MiB)];

  it('refuses a range that starts inside a mapping (bisects it) with EINVAL', () => {
    const r = run([...setup(), ...three, unmap(0x1000n, MiB - 0x1000n)]);
    expect(last(r).ret).toBe(EINVAL);
    expect(dmas(r)).toHaveLength(3);
  });

  it('refuses a range that ends inside a mapping with EINVAL', () => {
    const r = run([...setup(), ...three, unmap(0n, MiB + 0x1000n)]);
    expect(last(r).ret).toBe(EINVAL);
    expect(lockedVm(r)).toBe(768);
  });

  it('removes every mapping fully inside the range and reports their total size', () => {
    const r = run([...setup(), ...three, unmap(0n, 8n * MiB)]);
    expect(last(r)).toEqual({ seq: 9, ret: 0, out: { size: hx(3n * MiB) } });
    expect(lockedVm(r)).toBe(0);
    expect(dmas(r)).toEqual([]);
  });

  it('succeeds with size 0 when no mapping is in the range', () => {
    const r = run([...setup(), ...three, unmap(2n * MiB, 2n * MiB)]);
    expect(last(r)).toEqual({ seq: 9, ret: 0, out: { size: '0x0' } });
    expect(lockedVm(r)).toBe(768);
  });

  it('ALL unmaps everything', () => {
    const r = run([...setup(), ...three, unmap(0n, 0n, ['ALL'])]);
    expect(last(r)).toEqual({ seq: 9, ret: 0, out: { size: hx(3n * MiB) } });
    expect(lockedVm(r)).toBe(0);
    expect(r.vfio!.backends()[0]!.snapshot().dmaAvail).toBe(65535);
  });
});

describe('v1 unmap semantics', () => {
  it('stops at a mapping that starts before iova: success with size 0, the mapping kept', () => {
    const r = run([...setup({ v1: true }), map(0n, 2n * MiB), unmap(MiB, MiB)]);
    expect(last(r)).toEqual({ seq: 7, ret: 0, out: { size: '0x0' } });
    expect(lockedVm(r)).toBe(512);
  });

  it('removes a whole mapping whose first page is covered, reporting more than was asked', () => {
    const r = run([...setup({ v1: true }), map(0n, 2n * MiB), unmap(0n, 0x1000n)]);
    expect(last(r)).toEqual({ seq: 7, ret: 0, out: { size: hx(2n * MiB) } });
    expect(lockedVm(r)).toBe(0);
  });

  it('walks on through following mappings whose first page is covered', () => {
    const r = run([...setup({ v1: true }), map(0n, MiB), map(MiB, GiB), unmap(0n, MiB + 0x1000n)]);
    expect(last(r).out).toEqual({ size: hx(GiB + MiB) });
  });
});

describe('VFIO_DMA_UNMAP_FLAG_VADDR (invalidate, then MAP with VADDR)', () => {
  it('invalidates without unmapping, then accepts only an exact VADDR update', () => {
    const vaddrMap = (iova: bigint, size: bigint, va: bigint): Ev => map(iova, size, va, 100, ['VADDR']);
    const r = run([
      ...setup(),
      map(0n, MiB),
      unmap(0n, MiB, ['VADDR']),
      vaddrMap(0n, 0x1000n, 0x7e0000000000n),
      vaddrMap(0n, MiB, 0x7e0000000000n),
      vaddrMap(0n, MiB, 0x7e0000000000n),
    ]);
    expect(r.outcomes.slice(-4)).toEqual([
      { seq: 7, ret: 0, out: { size: hx(MiB) } },
      { seq: 8, ret: EINVAL },
      { seq: 9, ret: 0 },
      { seq: 10, ret: EINVAL },
    ]);
    expect(lockedVm(r)).toBe(256);
  });

  it('fails on an already invalid mapping and undoes its own invalidations', () => {
    const r = run([...setup(), map(0n, MiB), map(MiB, MiB), unmap(MiB, MiB, ['VADDR']), unmap(0n, 2n * MiB, ['VADDR'])]);
    expect(last(r)).toEqual({ seq: 9, ret: EINVAL });
    expect(r.vfio!.backends()[0]!.snapshot().dmas.length).toBe(2);
    // The first mapping is valid again: a VADDR update of it is refused.
    const r2 = run([...setup(), map(0n, MiB), map(MiB, MiB), unmap(MiB, MiB, ['VADDR']), unmap(0n, 2n * MiB, ['VADDR']), map(0n, MiB, 0x1000n, 100, ['VADDR'])]);
    expect(last(r2).ret).toBe(EINVAL);
  });
});
