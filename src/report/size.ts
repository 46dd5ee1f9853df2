/**
 * Sizes as an operator reads them: whole numbers with thousands separators,
 * KiB (what `ulimit -l` and libvirt's `<hard_limit unit='KiB'>` take), and a
 * short binary-unit figure. Exact on bigint bytes.
 */

/** 2096768 -> "2,096,768". */
export function thousands(n: bigint | number): string {
  const s = (typeof n === 'bigint' ? n : BigInt(Math.trunc(n))).toString();
  const neg = s.startsWith('-');
  const digits = neg ? s.slice(1) : s;
  const out = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return neg ? '-' + out : out;
}

/** Bytes as whole KiB, rounded up: a limit of that many KiB lets the bytes through. */
export function kibCeil(bytes: bigint): bigint {
  return (bytes + 1023n) / 1024n;
}

/** "2,096,768 KiB". */
export function formatKiB(bytes: bigint): string {
  return `${thousands(kibCeil(bytes))} KiB`;
}

const UNITS: readonly [bigint, string][] = [
  [1n << 40n, 'TiB'],
  [1n << 30n, 'GiB'],
  [1n << 20n, 'MiB'],
  [1n << 10n, 'KiB'],
];

/**
 * The largest binary unit the value reaches, with one decimal unless it is
 * whole: "64 MiB", "2.0 GiB" (for 2,147,090,432 bytes), "1,536 TiB" beyond.
 */
export function formatSize(bytes: bigint): string {
  for (const [u, name] of UNITS) {
    if (bytes >= u) {
      if (bytes % u === 0n) return `${thousands(bytes / u)} ${name}`;
      const tenths = (bytes * 10n + u / 2n) / u;
      return `${thousands(tenths / 10n)}.${tenths % 10n} ${name}`;
    }
  }
  return `${thousands(bytes)} B`;
}

/** "2,147,090,432 bytes". */
export function formatByteCount(bytes: bigint): string {
  return `${thousands(bytes)} byte${bytes === 1n ? '' : 's'}`;
}
