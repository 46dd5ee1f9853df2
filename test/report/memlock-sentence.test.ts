import { describe, expect, it } from 'vitest';
import { libvirtDefault, memlockSentence, type MemlockAnswer } from '../../src/report/memlock.js';
import { formatKiB, formatSize, thousands } from '../../src/report/size.js';

const base: MemlockAnswer = { pid: 4242, required: 2147090432n, limit: 67108864n, capIpcLock: false, refusals: 1, firstRefusal: { seq: 7, event: 'VFIO_IOMMU_MAP_DMA' }, containers: 1 };

describe('memlockSentence', () => {
  it('says what the VM needs, the limit in force, what it lacked and what failed', () => {
    expect(memlockSentence(base)).toBe(
      'pid 4242 needs RLIMIT_MEMLOCK >= 2,096,768 KiB (2,147,090,432 bytes, 2.0 GiB); the limit in force was 65,536 KiB, short by 2,031,232 KiB; VFIO_IOMMU_MAP_DMA at seq 7 failed because of it',
    );
  });

  it('counts later refusals with thousands separators and names vendor-driver pins', () => {
    expect(memlockSentence({ ...base, refusals: 126162, firstRefusal: { seq: 12, event: 'pin' } })).toContain('; a vendor-driver pin at seq 12 and 126,161 later operations failed because of it');
  });

  it('leaves out a short size that repeats the KiB, and says when nothing was locked', () => {
    expect(memlockSentence({ ...base, required: 655360n, limit: 1n << 30n, refusals: 0, firstRefusal: null })).toBe(
      'pid 4242 needs RLIMIT_MEMLOCK >= 640 KiB (655,360 bytes); the limit in force was 1,048,576 KiB, enough',
    );
    expect(memlockSentence({ ...base, required: 0n, limit: null, refusals: 0, firstRefusal: null })).toBe(
      'pid 4242 locked no memory through VFIO: any RLIMIT_MEMLOCK will do; no limit was in force (unlimited)',
    );
    expect(memlockSentence({ ...base, limit: null, capIpcLock: true, refusals: 0, firstRefusal: null })).toContain('; no limit applied (CAP_IPC_LOCK)');
  });

  it("compares with libvirt's default: factor x guest memory + 1 GiB (qemumemlocktest: 1 GiB guest, one VFIO device, 2147483648)", () => {
    expect(libvirtDefault(1n << 30n, 1)).toEqual({ bytes: 2147483648n, factor: 1 });
    expect(libvirtDefault(4n << 30n, 3)).toEqual({ bytes: 13n << 30n, factor: 3 });
    expect(libvirtDefault(4n << 30n, 0)).toBeNull();
    expect(memlockSentence(base, 512n << 20n)).toMatch(/; libvirt's default for this 512 MiB guest is 1,572,864 KiB \(1 x guest memory \+ 1 GiB\), short by 523,904 KiB$/);
  });
});

describe('size formatting', () => {
  it('rounds KiB up, keeps whole units whole, one decimal otherwise', () => {
    expect(formatKiB(1n)).toBe('1 KiB');
    expect(formatKiB(1025n)).toBe('2 KiB');
    expect(formatSize(64n << 20n)).toBe('64 MiB');
    expect(formatSize(1536n << 40n)).toBe('1,536 TiB');
    expect(formatSize((3n << 30n) / 2n)).toBe('1.5 GiB');
    expect(thousands(-1234567)).toBe('-1,234,567');
  });
});
