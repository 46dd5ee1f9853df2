/**
 * Where generated lines go: a file (gzip when it ends in .gz) written with
 * back-pressure, so memory stays flat however long the trace, or any sink.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import type { Writable } from 'node:stream';

export interface LineSink {
  /** Resolves when the sink can take more. */
  line(text: string): Promise<void> | void;
  close(): Promise<void>;
}

export function fileSink(path: string): LineSink {
  const file = createWriteStream(path);
  const out: Writable = path.endsWith('.gz') ? createGzip() : file;
  if (out !== file) out.pipe(file);
  let buf: string[] = [];
  let size = 0;
  const flush = async () => {
    if (buf.length === 0) return;
    const chunk = buf.join('');
    buf = [];
    size = 0;
    if (!out.write(chunk)) await once(out, 'drain');
  };
  return {
    line(text) {
      buf.push(text, '\n');
      size += text.length + 1;
      if (size >= 1 << 16) return flush();
    },
    async close() {
      await flush();
      out.end();
      await once(file, 'close');
    },
  };
}
