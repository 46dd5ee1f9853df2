/** Writes vfio-trace events in order, numbering them; the workloads speak through it. */
import type { LineSink } from './writer.js';

export const hx = (v: bigint | number): string => '0x' + BigInt(v).toString(16);

export class TraceBuilder {
  seq = 0;
  events = 0;

  constructor(private readonly sink: LineSink) {}

  header(h: Record<string, unknown>): Promise<void> | void {
    return this.sink.line(JSON.stringify({ type: 'header', format: 'vfio-trace', version: 1, ...h }));
  }

  event(e: Record<string, unknown>): Promise<void> | void {
    this.events++;
    return this.sink.line(JSON.stringify({ type: e.type, seq: ++this.seq, ...e }));
  }

  ioctl(pid: number, fd: number, cmd: string, arg?: unknown, extra: Record<string, unknown> = {}): Promise<void> | void {
    return this.event({ type: 'ioctl', pid, fd, cmd, ...(arg === undefined ? {} : { arg }), ...extra });
  }

  map(pid: number, fd: number, iova: bigint, size: bigint, vaddr: bigint, flags = ['READ', 'WRITE']): Promise<void> | void {
    return this.ioctl(pid, fd, 'VFIO_IOMMU_MAP_DMA', { flags, vaddr: hx(vaddr), iova: hx(iova), size: hx(size) });
  }

  unmap(pid: number, fd: number, iova: bigint, size: bigint): Promise<void> | void {
    return this.ioctl(pid, fd, 'VFIO_IOMMU_UNMAP_DMA', { flags: [], iova: hx(iova), size: hx(size) });
  }

  /** A container (fd) with the given groups (fds from fd + 1), set to type1v2. */
  async container(pid: number, fd: number, groups: number[]): Promise<void> {
    await this.event({ type: 'open', pid, fd, path: '/dev/vfio/vfio' });
    for (let i = 0; i < groups.length; i++) {
      await this.event({ type: 'open', pid, fd: fd + 1 + i, path: `/dev/vfio/${groups[i]}` });
      await this.ioctl(pid, fd + 1 + i, 'VFIO_GROUP_SET_CONTAINER', { container_fd: fd });
    }
    await this.ioctl(pid, fd, 'VFIO_SET_IOMMU', 'VFIO_TYPE1v2_IOMMU');
  }
}
