#!/usr/bin/env node
/**
 * A stand-in for bpftrace where the real one cannot attach (no BTF, no
 * root, a container): it prints what vfio-capture.bt prints for a process
 * that opens a container and maps and unmaps in a loop, one raw line every
 * few milliseconds, and also appends each line to $FAKE_BPFTRACE_LOG so a
 * test knows exactly what was "captured". Like bpftrace, SIGINT or SIGTERM
 * makes it run END (one last line) and exit 0.
 */
import { appendFileSync } from 'node:fs';

if (process.argv[2] === '--version') {
  console.log('bpftrace v0.17.0 (stand-in)');
  process.exit(0);
}
const log = process.env.FAKE_BPFTRACE_LOG;
let t = 1_000_000_000n;
const line = (s) => {
  t += 1000n;
  const l = `${t.toString().padStart(20, '0')} ${s}`;
  process.stdout.write(l + '\n');
  if (log) appendFileSync(log, l + '\n');
};
const stop = () => {
  line('end 0');
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
line('ready 0');
line('start 4242 18446744073709551615 0 fake-vmm');
line('open 4242 20 1 /dev/vfio/vfio');
let i = 0;
setInterval(() => {
  const iova = `0x${(i * 0x1000).toString(16)}`;
  line(i % 2 === 0 ? `map 4242 20 -22 3 0x7f0000000000 ${iova} 0x1000 0` : `unmap 4242 20 -22 0 ${iova} 0x1000 0x0 0`);
  i++;
}, Number(process.env.FAKE_BPFTRACE_INTERVAL_MS ?? 5));
