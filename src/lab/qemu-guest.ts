/**
 * Debian's real QEMU as a VMM in the lab guest: qemu-system-x86_64 (its
 * libraries and firmware from this host) assigns the guest's first
 * vfio-pci device, paused (-S) with `-trace 'vfio_*'`, under the project's
 * capture. Once its monitor answers (initialisation, and so every DMA map
 * of guest RAM and ROM, is done), the guest keeps /proc/PID/status (VmLck),
 * quits QEMU, and sends back QEMU's log (trace and errors), the capture and
 * the status.
 */
import { readFileSync } from 'node:fs';
import type { Bundle } from './bundle.js';

export interface QemuSpec {
  /** Put the device behind QEMU's intel-iommu (each device then has its own container). */
  viommu: boolean;
  /** RLIMIT_MEMLOCK in bytes, with CAP_IPC_LOCK dropped; absent: root's unlimited locked memory. */
  memlockLimit?: bigint;
  /** The VMM's guest memory, MiB. */
  memMiB: number;
}

/** The nested QEMU's command line (device name filled in by the guest). */
export function qemuArgs(spec: QemuSpec): string[] {
  return [
    '-machine', 'q35', '-accel', 'tcg', '-m', String(spec.memMiB), '-nodefaults', '-display', 'none',
    '-serial', 'none', '-monitor', 'stdio', '-S', '-trace', 'vfio_*',
    ...(spec.viommu ? ['-device', 'intel-iommu,caching-mode=on'] : []),
    '-device', 'vfio-pci,host=$dev0',
  ];
}

export function qemuInit(spec: QemuSpec): string {
  const limit = spec.memlockLimit === undefined ? '' : `/bin/memlock-exec ${spec.memlockLimit} `;
  return `mkfifo /tmp/qin
${limit}/usr/bin/qemu-system-x86_64 ${qemuArgs(spec).map((a) => (a.includes('*') ? `'${a}'` : a)).join(' ')} < /tmp/qin > /tmp/qmon 2> /tmp/qemu.log &
qpid=$!
exec 3> /tmp/qin
echo "info status" >&3
n=0
until grep -q 'VM status' /tmp/qmon; do
  kill -0 $qpid 2>/dev/null || break
  n=$((n+1)); [ $n -gt 1200 ] && break
  sleep 0.5
done
grep -q 'VM status' /tmp/qmon && cp /proc/$qpid/status /tmp/status.txt 2>/dev/null || : > /tmp/status.txt
echo quit >&3
wait $qpid; echo $? > /tmp/qemu.exit
exec 3>&-
sendfile qemu-exit.txt /tmp/qemu.exit
sendfile qemu.log /tmp/qemu.log
sendfile status.txt /tmp/status.txt
sendfile qemu-monitor.txt /tmp/qmon`;
}

export function qemuFiles(memlockExec: string, b: Bundle): void {
  b.program('/usr/bin/qemu-system-x86_64');
  // Debian builds TCG as a loadable module.
  b.program('/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so');
  b.tree('/usr/share/qemu');
  b.tree('/usr/share/seabios');
  b.file('bin/memlock-exec', readFileSync(memlockExec), 0o100755);
}
