/** The IOVAs of a pin/unpin call, one per page, in the order given. */
import type { PageList } from '../events.js';

export function expandPages(pages: PageList, pageSize: bigint): bigint[] {
  if (pages.kind === 'list') return pages.iovas;
  const out: bigint[] = [];
  for (let i = 0; i < pages.npage; i++) out.push(pages.iova + BigInt(i) * pageSize);
  return out;
}
