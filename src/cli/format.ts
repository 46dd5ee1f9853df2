/** Human-readable sizes and aligned tables for terminal output. */
export function formatBytes(bytes: bigint): string {
  const units: [bigint, string][] = [
    [1n << 40n, 'TiB'],
    [1n << 30n, 'GiB'],
    [1n << 20n, 'MiB'],
    [1n << 10n, 'KiB'],
  ];
  for (const [u, name] of units) {
    if (bytes >= u) {
      const whole = bytes / u;
      const frac = ((bytes % u) * 100n) / u;
      return bytes % u === 0n ? `${whole} ${name}` : `${whole}.${frac.toString().padStart(2, '0')} ${name}`;
    }
  }
  return `${bytes} B`;
}

export function formatPages(pages: number, pageSize: number): string {
  return `${pages} pages (${formatBytes(BigInt(pages) * BigInt(pageSize))})`;
}

export function table(rows: string[][], header: string[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** Bytes rounded up to whole MiB. */
export function roundUpMiB(bytes: bigint): bigint {
  const MiB = 1n << 20n;
  return (bytes + MiB - 1n) / MiB;
}
