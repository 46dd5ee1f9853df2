/**
 * Exact unsigned 64-bit values from JSON: a number below 2^53 or a string,
 * hexadecimal "0x..." or decimal. Anything at or above 2^64 is refused, never
 * rounded.
 */
import { U64_MAX } from '../model/units.js';
import { FieldError } from './trace-error.js';

export function parseU64(value: unknown, field: string): bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new FieldError(field, `expected an unsigned integer below 2^53 (write larger values as a "0x..." string), got ${value}`);
    }
    return BigInt(value);
  }
  if (typeof value === 'string') {
    if (!/^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(value)) {
      throw new FieldError(field, `expected a "0x..." hexadecimal or decimal string, got ${JSON.stringify(value)}`);
    }
    const v = BigInt(value);
    if (v > U64_MAX) {
      throw new FieldError(field, `value ${value} is at or above 2^64`);
    }
    return v;
  }
  throw new FieldError(field, `expected an unsigned 64-bit value (number or string), got ${typeof value}`);
}
