/**
 * Sizes on the command line: `--memlock-limit 64M`, `--guest-memory 2GiB`.
 * Bytes as a decimal or 0x integer, or a whole number with a binary suffix
 * (K/KiB, M/MiB, G/GiB, T/TiB, any case; powers of 1024, as `ulimit -l`
 * and libvirt's `unit='KiB'` count). Exact on bigint, at most 2^64 - 1
 * bytes (the trace format's numbers are u64).
 */
import { UsageError } from './usage-error.js';

/** For an option's description. */
export const formatSizeHelp = 'bytes, or a size such as 64M, 2GiB, 65536K (K, M, G, T: powers of 1024)';

const SHIFT: Record<string, bigint> = { k: 10n, m: 20n, g: 30n, t: 40n };
const U64_MAX = (1n << 64n) - 1n;
/** "65536", "0x4000000", "64M", "2GiB", "65536k": the suffix is one letter and an optional "iB". */
const SIZE = /^(?:(0x[0-9a-f]+)|(\d+)(?:\s*([kmgt])(?:ib)?)?)$/i;

/**
 * The bytes `text` names. `option` is the flag as typed (`--memlock-limit`),
 * for the message. Words such as `unlimited` are not sizes: the caller
 * decides what they mean before calling this.
 */
export function parseSize(text: string, option: string): bigint {
  const m = SIZE.exec(text.trim());
  if (!m) throw new UsageError(`${option} ${JSON.stringify(text)}: expected bytes or a size such as 64M, 2GiB, 65536K`);
  const bytes = m[1] !== undefined ? BigInt(m[1]) : BigInt(m[2]!) << (m[3] === undefined ? 0n : SHIFT[m[3].toLowerCase()]!);
  if (bytes > U64_MAX) throw new UsageError(`${option} ${JSON.stringify(text)}: more than 2^64 - 1 bytes`);
  return bytes;
}

/**
 * A yargs `coerce` function for a size option: its bytes, or the text when
 * it is one of `words` (`sizeArg('--memlock-limit', ['unlimited'])`). A bad
 * value throws here, inside yargs' validation, so the command's handler
 * never runs and nothing is written (src/cli/main.ts: exit 2, one line).
 */
export function sizeArg<W extends string>(option: string, words: readonly W[] = []): (v: string | string[]) => bigint | W {
  return (v) => {
    // An option given twice: the last one counts.
    const text = String(Array.isArray(v) ? v[v.length - 1] : v);
    return (words as readonly string[]).includes(text) ? (text as W) : parseSize(text, option);
  };
}

/** `--guest-memory SIZE`, as replay, accounting and report take it. */
export const guestMemoryOption = {
  type: 'string',
  coerce: sizeArg('--guest-memory'),
  describe: `the VM's memory as libvirt counts it, to compare the answer with libvirt's default limit (else the trace header's guest_memory): ${formatSizeHelp}`,
} as const;

/** The guest memory to compare with: the option's, else the trace's (bytes), else unknown. */
export function guestMemoryOf(option: bigint | undefined, fromTrace: number | bigint | null | undefined): bigint | null {
  if (option !== undefined) return option;
  return fromTrace === null || fromTrace === undefined ? null : BigInt(fromTrace);
}
