/**
 * Comparing what a trace observed with what the model computed. Numbers
 * compare exactly whatever their JSON form (42, "42", "0x2a").
 */
function asU64(v: unknown): bigint | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'bigint') return v;
  if (typeof v === 'string' && /^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(v)) return BigInt(v);
  return undefined;
}

export function sameValue(a: unknown, b: unknown): boolean {
  const x = asU64(a);
  const y = asU64(b);
  if (x !== undefined || y !== undefined) return x === y;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    // Flag lists compare as sets.
    if (a.every((v) => typeof v === 'string') && b.every((v) => typeof v === 'string')) {
      return a.every((v) => b.includes(v));
    }
    return a.every((v, i) => sameValue(v, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    return Object.keys(a).every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}

/** Keys of the observed `out` whose value the model does not reproduce. */
export function outDifferences(observed: Record<string, unknown>, model: Record<string, unknown> | undefined): string[] {
  return Object.keys(observed).filter((k) => !model || !sameValue(observed[k], model[k]));
}
