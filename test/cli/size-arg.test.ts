import { describe, expect, it } from 'vitest';
import { parseSize, sizeArg } from '../../src/cli/size-arg.js';
import { UsageError } from '../../src/cli/usage-error.js';

describe('parseSize', () => {
  it('parseSize reads bytes as decimal or 0x integers', () => {
    expect(parseSize('65536', '--x')).toBe(65536n);
    expect(parseSize('0', '--x')).toBe(0n);
    expect(parseSize('0x4000000', '--x')).toBe(0x4000000n);
    expect(parseSize('0X4000000', '--x')).toBe(0x4000000n);
    expect(parseSize(' 4096 ', '--x')).toBe(4096n);
  });

  it('parseSize reads K/KiB, M/MiB, G/GiB, T/TiB in any case as powers of 1024', () => {
    expect(parseSize('64M', '--x')).toBe(64n << 20n);
    expect(parseSize('64MiB', '--x')).toBe(64n << 20n);
    expect(parseSize('2GiB', '--x')).toBe(2n << 30n);
    expect(parseSize('2g', '--x')).toBe(2n << 30n);
    expect(parseSize('65536K', '--x')).toBe(0x4000000n);
    expect(parseSize('65536k', '--x')).toBe(0x4000000n);
    expect(parseSize('65536kib', '--x')).toBe(0x4000000n);
    expect(parseSize('1T', '--x')).toBe(1n << 40n);
    expect(parseSize('4TiB', '--x')).toBe(4n << 40n);
  });

  it('parseSize is exact up to 2^64 - 1 bytes and refuses more', () => {
    expect(parseSize('18446744073709551615', '--x')).toBe((1n << 64n) - 1n);
    expect(parseSize('0xffffffffffffffff', '--x')).toBe((1n << 64n) - 1n);
    expect(parseSize('16777215T', '--x')).toBe(16777215n << 40n);
    expect(() => parseSize('16777216T', '--guest-memory')).toThrow('--guest-memory "16777216T": more than 2^64 - 1 bytes');
    expect(() => parseSize('18446744073709551616', '--x')).toThrow(UsageError);
  });

  it('parseSize refuses other text with one line naming the option and the accepted forms', () => {
    for (const bad of ['2X', '', 'unlimited', '-1', '1.5G', '64MB', '0x', '0x10M', 'M', '64 M B', '1e6']) {
      let caught: unknown;
      try {
        parseSize(bad, '--memlock-limit');
      } catch (e) {
        caught = e;
      }
      expect(caught, bad).toBeInstanceOf(UsageError);
      expect((caught as Error).message).toBe(`--memlock-limit ${JSON.stringify(bad)}: expected bytes or a size such as 64M, 2GiB, 65536K`);
    }
  });
});

describe('sizeArg', () => {
  it('sizeArg coerces a size to bytes and keeps the words it is given', () => {
    const limit = sizeArg('--memlock-limit', ['unlimited']);
    expect(limit('64M')).toBe(64n << 20n);
    expect(limit('unlimited')).toBe('unlimited');
    expect(() => sizeArg('--guest-memory')('unlimited')).toThrow('--guest-memory "unlimited": expected bytes');
  });

  it('sizeArg takes the last value of an option given twice', () => {
    expect(sizeArg('--memlock-limit')(['1G', '64M'])).toBe(64n << 20n);
  });
});
