/**
 * sorted-btree's B+ tree, the ordered map under the dma list and the frame
 * ledger. The package is CommonJS with an ES default export: Node's ESM
 * hands over module.exports (the class is its `default`), bundlers with
 * interop (the test runner) hand over the class itself; both are accepted.
 */
import btree from 'sorted-btree';

type BTreeClass = typeof btree.default;
const loaded = btree as unknown as BTreeClass | { default: BTreeClass };

export const BTree: BTreeClass = typeof loaded === 'function' ? loaded : loaded.default;
export type BTree<K, V> = InstanceType<typeof btree.default<K, V>>;

/** Total order on bigints (addresses) for a BTree comparator. */
export const compareBigint = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
