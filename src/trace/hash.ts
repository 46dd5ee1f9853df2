/**
 * The sha256 of a segment file as stored (compressed bytes for .gz), read
 * from a path or from an fd the caller opened (positioned reads from offset
 * 0; the fd is not closed here). `shouldStop` is checked per chunk.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, read } from 'node:fs';
import { promisify } from 'node:util';
import { StopRequested } from './stop.js';

export type SegmentSource = string | { fd: number; path: string };

const CHUNK = 1 << 20;
const readAt = promisify(read);

export async function hashFile(src: SegmentSource, shouldStop?: () => boolean): Promise<string> {
  const ownFd = typeof src === 'string';
  const fd = ownFd ? openSync(src, 'r') : src.fd;
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = 0;
    for (;;) {
      if (shouldStop?.()) throw new StopRequested();
      // Asynchronous, so a signal handler runs between chunks of a large file.
      const { bytesRead } = await readAt(fd, buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return h.digest('hex');
  } finally {
    if (ownFd) closeSync(fd);
  }
}
