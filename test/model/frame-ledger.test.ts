import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameLedger } from '../../src/model/memory/frame-ledger.js';
import { modelRegistry } from '../../src/model/state/registry.js';
import { decodeGraph, encodeGraph } from '../../src/model/state/graph-codec.js';

/** The ledger against a count per frame, over random charges and uncharges in two frame groups. */
describe('frame ledger', () => {
  const spanArb = fc.record({
    group: fc.constantFrom(0n, (1n << 96n) | (5n << 64n)),
    first: fc.integer({ min: 0, max: 40 }),
    pages: fc.integer({ min: 1, max: 12 }),
    add: fc.boolean(),
  });

  it('counts duplicate pages exactly as a per-frame count does, gathers adjacent pages, and survives save and load', () => {
    fc.assert(
      fc.property(fc.array(spanArb, { maxLength: 60 }), (ops) => {
        let l = new FrameLedger();
        const counts = new Map<bigint, number>();
        let pendingShared = 0;
        for (const [i, op] of ops.entries()) {
          const pfn = op.group | BigInt(op.first);
          if (op.add) {
            let want = 0;
            for (let p = 0; p < op.pages; p++) {
              const c = counts.get(pfn + BigInt(p)) ?? 0;
              if (c > 0) want++;
              counts.set(pfn + BigInt(p), c + 1);
            }
            l.add({ pfn, pages: op.pages });
            pendingShared += want;
            if (i % 3 === 0) {
              expect(l.takeSharedAdded()).toBe(pendingShared);
              pendingShared = 0;
            }
          } else {
            for (let p = 0; p < op.pages; p++) {
              const c = counts.get(pfn + BigInt(p)) ?? 0;
              if (c > 0) counts.set(pfn + BigInt(p), c - 1);
            }
            l.remove({ pfn, pages: op.pages });
          }
          let dup = 0;
          for (const c of counts.values()) if (c > 1) dup += c - 1;
          expect(l.duplicatePages).toBe(dup);
          if (i % 7 === 6) {
            expect(l.takeSharedAdded()).toBe(pendingShared);
            pendingShared = 0;
            const back = decodeGraph(JSON.parse(JSON.stringify(encodeGraph(l, modelRegistry()))), modelRegistry()) as FrameLedger;
            expect(back).toBeInstanceOf(FrameLedger);
            expect(back.save()).toEqual(l.save());
            l = back;
          }
        }
        // Extents stay coalesced: no more extents than runs of equal nonzero counts.
        const keys = [...counts.entries()].filter(([, c]) => c > 0).sort((a, b) => (a[0] < b[0] ? -1 : 1));
        let runs = 0;
        for (let k = 0; k < keys.length; k++) {
          const prev = keys[k - 1];
          if (!prev || prev[0] + 1n !== keys[k]![0] || prev[1] !== keys[k]![1]) runs++;
        }
        expect(l.segments).toBe(runs);
      }),
      { seed: 20261203, numRuns: 500 },
    );
  });

  it('gathers page-by-page charges into one extent', () => {
    const l = new FrameLedger();
    for (let p = 0n; p < 16n; p++) l.add({ pfn: 100n + p, pages: 1 });
    for (let p = 0n; p < 16n; p++) l.add({ pfn: 108n + p, pages: 1 });
    expect(l.takeSharedAdded()).toBe(8);
    expect(l.duplicatePages).toBe(8);
    expect(l.segments).toBe(3);
    for (let p = 0n; p < 24n; p++) l.remove({ pfn: 100n + p, pages: 1 });
    expect(l.duplicatePages).toBe(0);
    expect(l.segments).toBe(1);
  });

  it('holds a span of 2^40 pages as one extent', () => {
    const l = new FrameLedger();
    l.add({ pfn: 0n, pages: 2 ** 40 });
    expect(l.takeSharedAdded()).toBe(0);
    l.add({ pfn: 2n ** 39n, pages: 1 });
    expect(l.takeSharedAdded()).toBe(1);
    expect(l.segments).toBe(3);
    l.remove({ pfn: 2n ** 39n, pages: 1 });
    expect(l.segments).toBe(1);
    expect(l.duplicatePages).toBe(0);
  });
});
