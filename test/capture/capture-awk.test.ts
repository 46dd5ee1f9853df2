/**
 * tools/capture/vfio-capture.awk: vfio-capture.bt's raw lines to
 * vfio-trace events. It follows the fd table as the kernel does (dup2 onto
 * an open fd closes it, a fork copies the table, exec closes close-on-exec
 * fds, exit closes the rest), so it knows a container from a group from a
 * device; a mmap of a device fd is a BAR (pfnmap). Run under every awk the
 * capture may meet: Debian's mawk (or whichever `awk` is installed), and
 * busybox's (the lab guest's).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { splitCapture } from '../../src/lab/capture.js';
import { parseTraceText } from '../../src/trace/line-parser.js';
import { IncompleteSegment } from '../../src/trace/reader.js';

const root = new URL('../..', import.meta.url).pathname;
const program = join(root, 'tools/capture/vfio-capture.awk');

const t = (n: number) => String(n).padStart(20, '0');
const RAW = [
  'start 100 18446744073709551615 1 qemu-system-x86',
  'rlimit 100 67108864',
  'cap 100 0',
  'open 100 3 1 /dev/vfio/vfio',
  'dup 100 3 20 dup2 0',
  'close 100 3',
  'open 100 4 1 /dev/vfio/12',
  'dup 100 4 21 fcntl 1',
  'ioctl 100 21 0 0x3b68 20',
  'ioctl 100 20 1 0x3b65 3',
  'ioctl 100 20 0 0x3b66 3',
  'devfd 100 21 22 0000:00:03.0',
  'ioctl 100 22 0 0x3b6c 140733193388032',
  'mmap 100 0x7f0000000000 0x20000 3 1 22 0x0 0',
  'mmap 100 0x7f1000000000 0x10000000 3 16418 -1 0x0 0',
  'map 100 20 0 3 0x7f1000000000 0x0 0x10000000 65536',
  'map 100 20 0 3 0x7f0000000000 0xfe000000 0x20000 65536',
  'ioctl 100 9 0 0x3b64 0',
  'fork 101 100 17',
  'unmap 101 20 0 0 0xfe000000 0x20000 0x20000 0',
  'exec 100 qemu-system-x86',
  'dup 100 5 20 dup2 0',
  'pin 100 0x1000 2 3 2 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001',
  'unpin 100 0x1000 2 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001',
  'mlock 101 0x7f1000000000 0x4000 0 0 4',
  'mlockall 101 3 0 4 100',
  'devseed 101 30',
  'mmap 101 0x7f3000000000 0x4000 3 1 30 0x30000000000 0',
  'exit 101',
  'exit 100',
  'Lost 3 events',
].map((l, i) => (l.startsWith('Lost') ? l : `${t(1000 + i)} ${l}`));

const EXPECTED: Record<string, unknown>[] = [
  { type: 'process', pid: 100, op: 'start', comm: 'qemu-system-x86', memlock_limit: 'unlimited', cap_ipc_lock: true },
  { type: 'process', pid: 100, op: 'setrlimit', memlock_limit: '67108864', cap_ipc_lock: true },
  { type: 'process', pid: 100, op: 'setrlimit', memlock_limit: '67108864', cap_ipc_lock: false },
  { type: 'open', pid: 100, fd: 3, path: '/dev/vfio/vfio', ret: 3 },
  { type: 'dup', pid: 100, fd: 3, newfd: 20, call: 'dup2', ret: 20 },
  { type: 'close', pid: 100, fd: 3 },
  { type: 'open', pid: 100, fd: 4, path: '/dev/vfio/12', ret: 4 },
  { type: 'dup', pid: 100, fd: 4, newfd: 21, call: 'fcntl', ret: 21 },
  { type: 'ioctl', pid: 100, fd: 21, cmd: 'VFIO_GROUP_SET_CONTAINER', arg: { container_fd: 20 }, ret: 0 },
  { type: 'ioctl', pid: 100, fd: 20, cmd: 'VFIO_CHECK_EXTENSION', arg: 'VFIO_TYPE1v2_IOMMU', ret: 1 },
  { type: 'ioctl', pid: 100, fd: 20, cmd: 'VFIO_SET_IOMMU', arg: 'VFIO_TYPE1v2_IOMMU', ret: 0 },
  { type: 'ioctl', pid: 100, fd: 21, cmd: 'VFIO_GROUP_GET_DEVICE_FD', arg: '0000:00:03.0', ret: 22 },
  // (the device fd's VFIO_DEVICE_GET_REGION_INFO is not written)
  { type: 'mmap', pid: 100, vaddr: '0x7f0000000000', size: '0x20000', backing: 'pfnmap', prot: ['READ', 'WRITE'], flags: ['SHARED'], fd: 22, offset: '0x0', locked_vm: 0 },
  { type: 'mmap', pid: 100, vaddr: '0x7f1000000000', size: '0x10000000', backing: 'anon', prot: ['READ', 'WRITE'], flags: ['PRIVATE', 'ANONYMOUS', 'NORESERVE'], locked_vm: 0 },
  { type: 'ioctl', pid: 100, fd: 20, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: ['READ', 'WRITE'], vaddr: '0x7f1000000000', iova: '0x0', size: '0x10000000' }, ret: 0, locked_vm: 65536 },
  { type: 'ioctl', pid: 100, fd: 20, cmd: 'VFIO_IOMMU_MAP_DMA', arg: { flags: ['READ', 'WRITE'], vaddr: '0x7f0000000000', iova: '0xfe000000', size: '0x20000' }, ret: 0, locked_vm: 65536 },
  // (an ioctl on fd 9, never seen opened, is counted on stderr)
  { type: 'process', pid: 101, op: 'fork', parent: 100 },
  // the child acts through its copy of fd 20
  { type: 'ioctl', pid: 101, fd: 20, cmd: 'VFIO_IOMMU_UNMAP_DMA', arg: { flags: [], iova: '0xfe000000', size: '0x20000' }, ret: 0, out: { size: '0x20000' }, locked_vm: 0 },
  // exec: fds 4, 21 and 22 were close-on-exec (O_CLOEXEC, F_DUPFD_CLOEXEC, the device fd); 20 was not
  { type: 'close', pid: 100, fd: 4 },
  { type: 'close', pid: 100, fd: 21 },
  { type: 'close', pid: 100, fd: 22 },
  { type: 'process', pid: 100, op: 'exec', comm: 'qemu-system-x86' },
  // dup2 of a fd that is not VFIO onto fd 20: for the trace, 20 is closed
  { type: 'close', pid: 100, fd: 20 },
  { type: 'pin', dev: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001', iova: '0x1000', npage: 2, prot: ['READ', 'WRITE'], ret: 2 },
  { type: 'unpin', dev: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001', iova: '0x1000', npage: 2 },
  { type: 'mlock', pid: 101, vaddr: '0x7f1000000000', size: '0x4000', ret: 0, locked_vm: 4 },
  { type: 'mlockall', pid: 101, flags: ['CURRENT', 'FUTURE'], pages: 96, ret: 0, locked_vm: 100 },
  // a device fd known from /proc (--pid): its mmap is a BAR
  { type: 'mmap', pid: 101, vaddr: '0x7f3000000000', size: '0x4000', backing: 'pfnmap', prot: ['READ', 'WRITE'], flags: ['SHARED'], fd: 30, offset: '0x30000000000', locked_vm: 0 },
  // exit closes what the child still holds: its copies of 4, 20, 21, 22, and 30
  { type: 'close', pid: 101, fd: 4 },
  { type: 'close', pid: 101, fd: 20 },
  { type: 'close', pid: 101, fd: 21 },
  { type: 'close', pid: 101, fd: 22 },
  { type: 'close', pid: 101, fd: 30 },
  { type: 'process', pid: 101, op: 'exit' },
  { type: 'process', pid: 100, op: 'exit' },
];

const awks = [
  ['awk', ['-f', program]],
  ...(existsSync('/bin/busybox') ? [['/bin/busybox', ['awk', '-f', program]]] : []),
] as [string, string[]][];

describe.each(awks)('vfio-capture.awk under %s', (cmd, args) => {
  const r = spawnSync(cmd, args, { input: RAW.join('\n') + '\n', encoding: 'utf8' });
  const events = r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  // The last line is the end record, counting the events before it.
  const end = events.pop();

  it('ends with the end record', () => {
    expect(end).toEqual({ type: 'end', events: EXPECTED.length });
  });

  it('with the header vfio-capture.sh writes, reads whole; the lab cuts it into workloads that read too', () => {
    const header = '{"type":"header","format":"vfio-trace","version":2,"trace_id":"lab/all","end_record":true}';
    const text = header + '\n' + r.stdout;
    expect(parseTraceText(text).events).toHaveLength(EXPECTED.length);
    // Without its last line the capture is still being written.
    expect(() => parseTraceText(text.trimEnd().split('\n').slice(0, -1).join('\n'))).toThrow(IncompleteSegment);
    const workloads = splitCapture(text);
    expect(workloads.map((w) => [w.comm, w.pid])).toEqual([['qemu-system-x86', 100]]);
    expect(parseTraceText(workloads[0]!.lines.join('\n')).events).toHaveLength(EXPECTED.length);
  });

  it('writes the events the raw lines mean, numbered from 1 with their times', () => {
    expect(r.status).toBe(0);
    expect(events.map(({ seq: _s, ts: _t, ...rest }) => rest)).toEqual(EXPECTED);
    expect(events.map((e) => e.seq)).toEqual(EXPECTED.map((_, i) => i + 1));
    expect(events[0]!.ts).toBe(1000);
  });

  it('reports on stderr what it could not write: an ioctl on an fd it never saw opened, a line that is not the script\'s', () => {
    expect(r.stderr).toContain('1 VFIO ioctls were on descriptors opened before the capture');
    expect(r.stderr).toContain('raw line 31: not a vfio-capture.bt line: Lost 3 events');
  });
});
