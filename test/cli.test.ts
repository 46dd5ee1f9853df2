import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const bin = join(root, 'bin/pinledger.js');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function cliIn(cwd: string, env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('pinledger replay', () => {
  it('prints a summary and exits 0 when there is no error finding', () => {
    const r = cli('replay', 'traces/samples/vm-boot.jsonl');
    expect(r.code).toBe(0);
    expect(r.out).toContain('trace host42/vm-boot (1 segment)');
    expect(r.out).toMatch(/4242\s+1,048,608 pages \(4\.0 GiB\)\s+0 pages \(0 B\)/);
    expect(r.out).toContain('pid 4242 needs RLIMIT_MEMLOCK >= 4,194,432 KiB (4,295,098,368 bytes, 4.0 GiB); the limit in force was 5,242,880 KiB, enough');
    expect(r.out).toContain('TRACE_UNKNOWN_CMD 1');
  });

  it('exits 1 with error findings and prints the documented JSON', () => {
    const r = cli('replay', 'traces/samples/leak.jsonl', '--json', '--outcomes', '--backend', 'upstream');
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out);
    expect(Object.keys(doc)).toEqual(['trace_id', 'answer', 'backends']);
    expect(doc.answer).toEqual(['pid 4242 needs RLIMIT_MEMLOCK >= 64 KiB (65,536 bytes); the limit in force was 1,048,576 KiB, enough']);
    expect(doc.trace_id).toBe('host42/vgpu-leak');
    expect(Object.keys(doc.backends)).toEqual(['upstream']);
    const b = doc.backends.upstream;
    expect(b.locked_vm).toEqual({ '4242': 16 });
    expect(b.peak_locked_vm).toEqual({ '4242': 16 });
    expect(b.role).toBe('deciding');
    expect(b.memlock_required).toEqual({ '4242': 65536 });
    expect(b.memlock_limit).toEqual({ '4242': 1073741824 });
    expect(b.memlock_short).toEqual({ '4242': 0 });
    expect(b.limit_refusals).toEqual({ '4242': null });
    expect(b.charge_by_cause).toEqual({ '4242': { direct: 0, pins: 16, shared: 0 } });
    expect(b.findings.map((f: { code: string; severity: string; seq: number }) => [f.code, f.severity, f.seq])).toEqual([
      ['PIN_LEAK', 'error', 11],
      ['ACCT_LEAK', 'error', 12],
    ]);
    expect(b.outcomes).toHaveLength(13);
    expect(b.outcomes[7]).toEqual({ seq: 8, ret: 16 });
  });

  it('replays a trace with mediated groups through every design by default, with divergences and the memlock answer', () => {
    const r = cli('replay', 'traces/samples/mixed-direct-mdev.jsonl', '--json');
    // rfc-v5's ACCT_DOUBLE_CHARGE errors are a comparison: upstream, the captured design, decides.
    expect(r.code).toBe(0);
    expect(cli('replay', 'traces/samples/mixed-direct-mdev.jsonl', '--backend', 'rfc-v5').code).toBe(1);
    const doc = JSON.parse(r.out);
    expect(Object.keys(doc.backends)).toEqual(['upstream', 'rfc-v5', 'iommufd-compat']);
    expect(doc.backends['rfc-v5'].memlock_required).toEqual({ '4242': 262660 * 4096 });
    expect(doc.backends.upstream.memlock_required).toEqual({ '4242': 1073741824 });
    expect([doc.backends.upstream.role, doc.backends['rfc-v5'].role]).toEqual(['deciding', 'comparison']);
    expect(doc.answer[1]).toBe('rfc-v5 (comparison): pid 4242 needs RLIMIT_MEMLOCK >= 1,050,640 KiB (1,075,855,360 bytes, 1.0 GiB); the limit in force was 2,097,152 KiB, enough');
    const div = doc.backends.upstream.findings.find((f: { code: string }) => f.code === 'DESIGN_DIVERGENCE');
    expect(div).toMatchObject({ seq: 10, severity: 'info', details: { upstream: 262144, 'rfc-v5': 262656 } });
    const human = cli('replay', 'traces/samples/mixed-direct-mdev.jsonl');
    expect(human.out).toContain('backend rfc-v5 (comparison): 19 events, 1 container');
    expect(human.out).toMatch(/4242\s+262,660 pages \(1\.0 GiB\)\s+0 pages \(0 B\)\s+1,050,640 KiB \(1\.0 GiB\)\s+2,097,152 KiB\s+direct 262,144, pins 516, shared 516/);
    expect(human.out).toContain('ACCT_DOUBLE_CHARGE 2');
  });

  it('replays a direct-only trace through upstream alone by default, and through all on request', () => {
    expect(Object.keys(JSON.parse(cli('replay', 'traces/samples/vm-boot.jsonl', '--json').out).backends)).toEqual(['upstream']);
    const all = JSON.parse(cli('replay', 'traces/samples/vm-boot.jsonl', '--json', '--backend', 'all').out);
    expect(Object.keys(all.backends)).toEqual(['upstream', 'rfc-v5', 'iommufd-compat']);
    // The capture's observed results are held against upstream only.
    expect(all.backends['iommufd-compat'].findings.map((f: { code: string }) => f.code)).toEqual(['TRACE_UNKNOWN_CMD']);
  });

  it('leaves outcomes out without --outcomes', () => {
    const doc = JSON.parse(cli('replay', 'traces/samples/limit-overrun.jsonl', '--json').out);
    expect(doc.backends.upstream.outcomes).toBeUndefined();
    expect(doc.backends.upstream.findings[0].code).toBe('ACCT_LIMIT');
  });

  it('exits 2 naming file, line and field for a bad trace', () => {
    const r = cli('replay', 'traces/samples/invalid-seq.jsonl');
    expect(r.code).toBe(2);
    expect(r.err).toContain('traces/samples/invalid-seq.jsonl:5: field seq: seq 3 does not increase');
  });

  it('exits 2 for bad input of every kind', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-cli-'));
    const H = '{"type":"header","format":"vfio-trace","version":1,"trace_id":"t"}';
    const bad: Record<string, string> = {
      'notjson.jsonl': `${H}\nnot json\n`,
      'type.jsonl': `${H}\n{"type":"close","seq":1,"pid":1,"fd":"x"}\n`,
      'u64.jsonl': `${H}\n{"type":"munmap","seq":1,"pid":1,"vaddr":"0x1ffffffffffffffff","size":1}\n`,
      'unknown.jsonl': `${H}\n{"type":"fork","seq":1}\n`,
    };
    for (const [name, text] of Object.entries(bad)) {
      writeFileSync(join(dir, name), text);
      const r = cli('replay', join(dir, name));
      expect(r.code, name).toBe(2);
      expect(r.err, name).toContain(`${name}:2: `);
    }
    expect(cli('replay', join(dir, 'missing.jsonl')).code).toBe(2);
  });

  it('exits 2 for usage errors', () => {
    expect(cli('replay').code).toBe(2);
    expect(cli('frobnicate').code).toBe(2);
    const r = cli('replay', 'traces/samples/vm-boot.jsonl', '--backend', 'nope');
    expect(r.code).toBe(2);
    expect(r.err).toContain('Unknown backend "nope"');
  });

  it('continues a trace across segments given in order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-seg-'));
    const h = (seg: number) => JSON.stringify({ type: 'header', format: 'vfio-trace', version: 1, trace_id: 'seg', segment: seg });
    writeFileSync(
      join(dir, 's0.jsonl'),
      [
        h(0),
        '{"type":"open","seq":1,"pid":7,"fd":3,"path":"/dev/vfio/vfio"}',
        '{"type":"open","seq":2,"pid":7,"fd":4,"path":"/dev/vfio/1"}',
        '{"type":"ioctl","seq":3,"pid":7,"fd":4,"cmd":"VFIO_GROUP_SET_CONTAINER","arg":{"container_fd":3}}',
        '{"type":"ioctl","seq":4,"pid":7,"fd":3,"cmd":"VFIO_SET_IOMMU","arg":"VFIO_TYPE1v2_IOMMU"}',
        '{"type":"ioctl","seq":5,"pid":7,"fd":3,"cmd":"VFIO_IOMMU_MAP_DMA","arg":{"flags":["READ","WRITE"],"vaddr":"0x7f0000000000","iova":0,"size":"0x200000"}}',
      ].join('\n') + '\n',
    );
    writeFileSync(
      join(dir, 's1.jsonl'),
      [h(1), '{"type":"ioctl","seq":6,"pid":7,"fd":3,"cmd":"VFIO_IOMMU_UNMAP_DMA","arg":{"flags":[],"iova":0,"size":"0x100000"},"ret":"EINVAL","locked_vm":512}'].join('\n') + '\n',
    );
    const r = cli('replay', join(dir, 's0.jsonl'), join(dir, 's1.jsonl'), '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).backends.upstream.locked_vm).toEqual({ '7': 512 });
    const wrongOrder = cli('replay', join(dir, 's1.jsonl'), join(dir, 's0.jsonl'));
    expect(wrongOrder.code).toBe(2);
    expect(wrongOrder.err).toContain('segment 0 must come first');
  });
});

describe('the memlock answer on the command line', () => {
  const SENTENCE =
    'pid 4242 needs RLIMIT_MEMLOCK >= 2,096,768 KiB (2,147,090,432 bytes, 2.0 GiB); the limit in force was 65,536 KiB, short by 2,031,232 KiB; VFIO_IOMMU_MAP_DMA at seq 7 failed because of it';

  it('replay: a map refused by RLIMIT_MEMLOCK exits 1 and leads with what the VM needs', () => {
    const r = cli('replay', 'traces/samples/limit-overrun.jsonl');
    expect(r.code).toBe(1);
    expect(r.out.split('\n').slice(0, 3)).toEqual(['trace host42/vm-memlock (1 segment)', '', SENTENCE]);
    expect(r.out).toMatch(/4242\s+160 pages \(640 KiB\)\s+0 pages \(0 B\)\s+2,096,768 KiB \(2\.0 GiB\)\s+65,536 KiB\s+direct 524,192, pins 0, shared 0/);
  });

  it('replay --json: the what-if answer, the limit in force, what it lacked and the first refusal', () => {
    const r = cli('replay', 'traces/samples/limit-overrun.jsonl', '--json');
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out);
    expect(doc.answer).toEqual([SENTENCE]);
    const b = doc.backends.upstream;
    expect(b.peak_locked_vm).toEqual({ '4242': 160 });
    expect(b.memlock_required).toEqual({ '4242': 2147090432 });
    expect(b.memlock_limit).toEqual({ '4242': 67108864 });
    expect(b.memlock_short).toEqual({ '4242': 2147090432 - 67108864 });
    expect(b.limit_refusals).toEqual({ '4242': { count: 1, first_seq: 7, first_event: 'VFIO_IOMMU_MAP_DMA' } });
    expect(b.charge_by_cause).toEqual({ '4242': { direct: 524192, pins: 0, shared: 0 } });
  });

  it("replay --guest-memory: libvirt's default beside the answer", () => {
    // 1 VFIO container: 1 x 1 GiB + 1 GiB = 2 GiB = 2,097,152 KiB, above the 2,096,768 KiB needed.
    const enough = cli('replay', 'traces/samples/limit-overrun.jsonl', '--guest-memory', '1G').out.split('\n')[2];
    expect(enough).toBe(SENTENCE + "; libvirt's default for this 1 GiB guest is 2,097,152 KiB (1 x guest memory + 1 GiB), enough");
    // Two containers (a vIOMMU, one per device): 2 x 512 MiB + 1 GiB = 2 GiB, just what the two containers charge.
    const viommu = cli('replay', 'traces/samples/viommu-two-containers.jsonl', '--guest-memory', '512M').out.split('\n')[2];
    expect(viommu).toContain("libvirt's default for this 512 MiB guest is 2,097,152 KiB (2 x guest memory + 1 GiB), enough");
    const bad = cli('replay', 'traces/samples/limit-overrun.jsonl', '--guest-memory', 'lots');
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
  });
});

describe('pinledger ingest', () => {
  const sampleFile = (n: string) => join(root, 'traces/samples', n);

  it('ingests into ./pinledger.db by default, recognises a duplicate, and exits 2 for a bad file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-ingest-'));
    const r = cliIn(dir, {}, 'ingest', sampleFile('vm-boot.jsonl'), sampleFile('vm-boot.jsonl'));
    expect(r.code).toBe(0);
    expect(r.out).toContain('vm-boot.jsonl: ingested trace host42/vm-boot segment 0 (29 events, 1 finding,');
    expect(r.out).toContain('vm-boot.jsonl: duplicate trace host42/vm-boot segment 0');
    expect(existsSync(join(dir, 'pinledger.db'))).toBe(true);
    const bad = cliIn(dir, {}, 'ingest', sampleFile('invalid-seq.jsonl'));
    expect(bad.code).toBe(2);
    expect(bad.out).toContain('invalid-seq.jsonl: quarantined trace host42/bad segment 0 (invalid-seq.jsonl:5: field seq');
  });

  it('takes the database from PINLEDGER_DB, or from a config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-ingest-'));
    expect(cliIn(dir, { PINLEDGER_DB: join(dir, 'env.db') }, 'ingest', sampleFile('leak.jsonl')).code).toBe(0);
    expect(existsSync(join(dir, 'env.db'))).toBe(true);
    writeFileSync(join(dir, 'pinledger.config.json'), JSON.stringify({ db: join(dir, 'conf.db') }));
    expect(cliIn(dir, {}, 'ingest', sampleFile('leak.jsonl')).code).toBe(0);
    expect(existsSync(join(dir, 'conf.db'))).toBe(true);
    expect(existsSync(join(dir, 'pinledger.db'))).toBe(false);
  });

  it('reports a segment still waiting for its predecessor, and exits 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinledger-ingest-'));
    const lines = readFileSync(sampleFile('vm-boot.jsonl'), 'utf8').split('\n');
    const h = JSON.parse(lines[0]!);
    writeFileSync(join(dir, 'seg1.jsonl'), [JSON.stringify({ ...h, segment: 1 }), ...lines.slice(1)].join('\n'));
    const r = cliIn(dir, {}, 'ingest', join(dir, 'seg1.jsonl'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('seg1.jsonl still waits for segment 0 of trace host42/vm-boot');
  });
});
