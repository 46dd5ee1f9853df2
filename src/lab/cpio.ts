/** A gzip'd newc cpio archive (the initramfs format), written in memory. */
import { gzipSync } from 'node:zlib';

export interface CpioEntry {
  path: string;
  /** Directory when absent. */
  data?: Buffer;
  mode?: number;
}

export function cpioNewc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const field = (v: number) => v.toString(16).padStart(8, '0');
  const add = (name: string, mode: number, data: Buffer, ino: number) => {
    const nameBuf = Buffer.from(name + '\0');
    const hdr =
      '070701' + field(ino) + field(mode) + field(0) + field(0) + field(1) + field(0) + field(data.length) +
      field(0) + field(0) + field(0) + field(0) + field(nameBuf.length) + field(0);
    parts.push(Buffer.from(hdr), nameBuf, pad(hdr.length + nameBuf.length), data, pad(data.length));
  };
  entries.forEach((e, i) => add(e.path.replace(/^\//, ''), e.data ? (e.mode ?? 0o100644) : 0o040755, e.data ?? Buffer.alloc(0), i + 1));
  add('TRAILER!!!', 0, Buffer.alloc(0), 0);
  return gzipSync(Buffer.concat(parts), { level: 1 });
}
