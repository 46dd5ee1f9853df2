import { describe, expect, it } from 'vitest';
import { parseTraceText } from '../../src/trace/line-parser.js';
import { traceErrorOf } from './trace-error-of.js';

const H1 = '{"type":"header","format":"vfio-trace","version":1,"trace_id":"t"}';
const H2 = '{"type":"header","format":"vfio-trace","version":2,"trace_id":"t","kernel":"6.1.0-57-amd64","attached":[{"pid":7,"comm":"qemu-system-x86"},{"pid":8}]}';

const errorOf = traceErrorOf;

function one(line: string, header = H2) {
  const { events } = parseTraceText(`${header}\n${line}`);
  expect(events).toHaveLength(1);
  return events[0]!;
}

describe('version 2 events and fields are read exactly', () => {
  it('reads the header: version, kernel and attached processes', () => {
    const { header } = parseTraceText(`${H2}\n`);
    expect(header.version).toBe(2);
    expect(header.kernel).toBe('6.1.0-57-amd64');
    expect(header.attached).toEqual([{ pid: 7, comm: 'qemu-system-x86' }, { pid: 8 }]);
  });

  it('reads a version 1 header as version 1, without attached', () => {
    const { header } = parseTraceText(`${H1}\n`);
    expect(header.version).toBe(1);
    expect(header.attached).toBeUndefined();
  });

  it('reads process fork (pid the child, parent) and exec (comm)', () => {
    expect(one('{"type":"process","seq":1,"op":"fork","pid":11,"parent":10}')).toMatchObject({ type: 'process', op: 'fork', pid: 11, parent: 10 });
    expect(one('{"type":"process","seq":1,"op":"exec","pid":11,"comm":"qemu"}')).toMatchObject({ type: 'process', op: 'exec', pid: 11, comm: 'qemu' });
  });

  it('reads dup with its call', () => {
    expect(one('{"type":"dup","seq":1,"pid":1,"fd":20,"newfd":30,"call":"dup2","ret":30}')).toEqual({
      seq: 1,
      line: 2,
      observed: { ret: 30 },
      type: 'dup',
      pid: 1,
      fd: 20,
      newfd: 30,
      call: 'dup2',
    });
  });

  it('reads mmap prot, flags, fd, offset and backing file, 64-bit exact', () => {
    const e = one('{"type":"mmap","seq":1,"pid":1,"vaddr":"0x7f0000000000","size":"0x20000","backing":"file","prot":["READ"],"flags":["PRIVATE","POPULATE"],"fd":5,"offset":"0xffffffffffff0000"}');
    expect(e).toMatchObject({
      type: 'mmap',
      backing: 'file',
      vaddr: 0x7f0000000000n,
      size: 0x20000n,
      prot: { read: true, write: false, exec: false },
      flags: ['PRIVATE', 'POPULATE'],
      fd: 5,
      offset: 0xffffffffffff0000n,
    });
  });

  it('reads PROT_NONE as no access', () => {
    expect(one('{"type":"mmap","seq":1,"pid":1,"vaddr":0,"size":4096,"backing":"anon","prot":[],"flags":["PRIVATE","ANONYMOUS"]}')).toMatchObject({
      prot: { read: false, write: false, exec: false },
    });
  });

  it('reads mlock, munlock, mlockall (pages) and munlockall with locked_vm', () => {
    expect(one('{"type":"mlock","seq":1,"pid":1,"vaddr":4096,"size":8192,"flags":["ONFAULT"],"ret":0,"locked_vm":2}')).toMatchObject({
      type: 'mlock',
      vaddr: 4096n,
      size: 8192n,
      onFault: true,
      observed: { ret: 0, lockedVm: 2 },
    });
    expect(one('{"type":"munlock","seq":1,"pid":1,"vaddr":4096,"size":8192}')).toMatchObject({ type: 'munlock', vaddr: 4096n, size: 8192n });
    expect(one('{"type":"mlockall","seq":1,"pid":1,"flags":["CURRENT","FUTURE"],"pages":1234,"ret":0}')).toMatchObject({
      type: 'mlockall',
      current: true,
      future: true,
      onFault: false,
      pages: 1234,
    });
    expect(one('{"type":"munlockall","seq":1,"pid":1,"ret":0,"locked_vm":0}')).toMatchObject({ type: 'munlockall', pid: 1, observed: { ret: 0, lockedVm: 0 } });
  });

  it('reads VFIO_GROUP_GET_DEVICE_FD with the device name and the fd as ret', () => {
    const e = one('{"type":"ioctl","seq":1,"pid":1,"fd":21,"cmd":"VFIO_GROUP_GET_DEVICE_FD","arg":"0000:01:00.0","ret":22}');
    expect(e).toMatchObject({ type: 'ioctl', call: { cmd: 'VFIO_GROUP_GET_DEVICE_FD', device: '0000:01:00.0' }, observed: { ret: 22 } });
  });

  it('reads a device event with pid and fd', () => {
    expect(one('{"type":"device","seq":1,"dev":"m","op":"open","pid":3,"fd":9}')).toMatchObject({ type: 'device', dev: 'm', op: 'open', pid: 3, fd: 9 });
  });
});

describe('a version 1 file reads exactly as before', () => {
  it('keeps VFIO_GROUP_GET_DEVICE_FD an unknown command', () => {
    expect(one('{"type":"ioctl","seq":1,"pid":1,"fd":21,"cmd":"VFIO_GROUP_GET_DEVICE_FD","arg":"0000:01:00.0","ret":22}', H1)).toMatchObject({
      call: { cmd: 'unknown', name: 'VFIO_GROUP_GET_DEVICE_FD' },
    });
  });

  it('ignores the mmap fields and the device pid and fd of version 2', () => {
    const m = one('{"type":"mmap","seq":1,"pid":1,"vaddr":0,"size":4096,"backing":"anon","prot":["READ"],"flags":["PRIVATE"],"fd":3}', H1);
    expect(m).toEqual({ seq: 1, line: 2, observed: {}, type: 'mmap', pid: 1, vaddr: 0n, size: 4096n, backing: 'anon' });
    expect(one('{"type":"device","seq":1,"dev":"m","op":"open","pid":3,"fd":9}', H1)).toEqual({ seq: 1, line: 2, observed: {}, type: 'device', dev: 'm', op: 'open' });
  });
});

describe('version 2 in a version 1 file, and bad version 2 input, are trace errors naming line and field', () => {
  const cases: [string, string, number, string, RegExp][] = [
    ['a dup', `${H1}\n{"type":"dup","seq":1,"pid":1,"fd":3,"newfd":4,"call":"dup2"}`, 2, 'type', /event type "dup" is version 2: the header says "version": 1/],
    ['an mlock', `${H1}\n{"type":"close","seq":1,"pid":1,"fd":3}\n{"type":"mlock","seq":2,"pid":1,"vaddr":0,"size":4096}`, 3, 'type', /"mlock" is version 2/],
    ['an mlockall', `${H1}\n{"type":"mlockall","seq":1,"pid":1,"flags":["CURRENT"]}`, 2, 'type', /"mlockall" is version 2/],
    ['a munlockall', `${H1}\n{"type":"munlockall","seq":1,"pid":1}`, 2, 'type', /"munlockall" is version 2/],
    ['a fork', `${H1}\n{"type":"process","seq":1,"op":"fork","pid":2,"parent":1}`, 2, 'op', /process op "fork" is version 2/],
    ['an exec', `${H1}\n{"type":"process","seq":1,"op":"exec","pid":2}`, 2, 'op', /process op "exec" is version 2/],
    ['backing file', `${H1}\n{"type":"mmap","seq":1,"pid":1,"vaddr":0,"size":4096,"backing":"file"}`, 2, 'backing', /backing "file" is version 2/],
    ['attached', '{"type":"header","format":"vfio-trace","version":1,"trace_id":"t","attached":[{"pid":1}]}', 1, 'attached', /version 2 field/],
    ['version 3', '{"type":"header","format":"vfio-trace","version":3,"trace_id":"t"}', 1, 'version', /expected one of 1, 2/],
    ['a fork without parent', `${H2}\n{"type":"process","seq":1,"op":"fork","pid":2}`, 2, 'parent', /required/],
    ['a dup with an unknown call', `${H2}\n{"type":"dup","seq":1,"pid":1,"fd":3,"newfd":4,"call":"dup4"}`, 2, 'call', /expected one of/],
    ['GET_DEVICE_FD without a device name', `${H2}\n{"type":"ioctl","seq":1,"pid":1,"fd":21,"cmd":"VFIO_GROUP_GET_DEVICE_FD","ret":22}`, 2, 'arg', /device name/],
    ['an unknown mmap flag', `${H2}\n{"type":"mmap","seq":1,"pid":1,"vaddr":0,"size":4096,"backing":"anon","flags":["GROWSDOWN"]}`, 2, 'flags.0', /expected one of/],
    ['an unknown mlockall flag', `${H2}\n{"type":"mlockall","seq":1,"pid":1,"flags":["NOW"]}`, 2, 'flags.0', /expected one of/],
    ['mlockall pages at 2^64', `${H2}\n{"type":"mlockall","seq":1,"pid":1,"flags":["CURRENT"],"pages":"0x10000000000000000"}`, 2, 'pages', /unsigned 64-bit/],
  ];
  for (const [what, text, line, field, reason] of cases) {
    it(`reports ${what}`, () => {
      const e = errorOf(text);
      expect([e.line, e.field]).toEqual([line, field]);
      expect(e.reason).toMatch(reason);
    });
  }
});
