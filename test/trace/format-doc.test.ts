import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { upstreamDriver } from '../../src/model/backends/upstream/index.js';
import { replayText } from '../../src/model/replay/replay-text.js';

const doc = readFileSync(new URL('../../schema/TRACE-FORMAT.md', import.meta.url), 'utf8');

/** The ``` blocks of the page that are traces (their first line is a header). */
function traces(text: string): string[] {
  return [...text.matchAll(/```\n(\{"type":"header"[\s\S]*?)```/g)].map((m) => m[1]!);
}

describe('schema/TRACE-FORMAT.md, the repo copy of the contract', () => {
  it('says at its top that it is the repo copy', () => {
    expect(doc.split('\n').slice(0, 6).join('\n')).toMatch(/the repo's copy of the contract/);
  });

  it('has a version 1 and a version 2 example that replay with every observed result matching', () => {
    const ex = traces(doc);
    expect(ex.map((t) => JSON.parse(t.split('\n')[0]!).version)).toEqual([1, 2]);
    for (const t of ex) {
      const r = replayText(t, upstreamDriver);
      expect(r.findings.filter((f) => f.code === 'RET_MISMATCH' || f.code === 'ACCT_MISMATCH')).toEqual([]);
    }
    const v2 = replayText(ex[1]!, upstreamDriver);
    expect(v2.accounting().get(101)!.peakLockedVm).toBe(256);
    expect(v2.accounting().get(100)!.peakLockedVm).toBe(256);
  });
});
