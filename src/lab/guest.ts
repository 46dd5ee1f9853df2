/**
 * The lab's machine: a Debian kernel package unpacked into a cache (never
 * installed), the static helper built from lab/helper, an initramfs of
 * busybox, the vfio modules, the helper and the steps, and QEMU's q35 with
 * an emulated Intel IOMMU (48-bit) and one e1000e per group, bound to
 * vfio-pci by the init script. Software emulation (TCG): no KVM needed.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Bundle } from './bundle.js';
import { cpioNewc } from './cpio.js';
import { captureInit, captureFiles } from './capture.js';
import { LabError } from './lab-error.js';
import { qemuInit, qemuFiles, type QemuSpec } from './qemu-guest.js';

export const DEFAULT_KERNEL_PACKAGE = 'linux-image-amd64';
export const GUEST_MEM_MIB = 6144;
export const GUEST_TIMEOUT_MS = 1_200_000;
export const MACHINE = 'qemu q35 tcg, intel-iommu aw-bits=48, e1000e per group';

/** The vfio modules in load order; vfio_virqfd is built into vfio from 6.2 on. */
const MODULES: { path: string; optional?: boolean }[] = [
  { path: 'virt/lib/irqbypass' },
  { path: 'drivers/vfio/vfio' },
  { path: 'drivers/vfio/vfio_iommu_type1' },
  { path: 'drivers/vfio/vfio_virqfd', optional: true },
  { path: 'drivers/vfio/pci/vfio-pci-core' },
  { path: 'drivers/vfio/pci/vfio-pci' },
  { path: 'drivers/vfio/mdev/mdev' },
];

/** The kernel's modules as the guest loads them: uncompressed (Debian xz-compresses them from 6.x). */
function moduleFiles(kernel: Kernel): { name: string; data: Buffer }[] {
  const out: { name: string; data: Buffer }[] = [];
  for (const m of MODULES) {
    const name = m.path.split('/').pop()!;
    const plain = join(kernel.modules, `${m.path}.ko`);
    const xz = `${plain}.xz`;
    if (existsSync(plain)) out.push({ name, data: readFileSync(plain) });
    else if (existsSync(xz)) out.push({ name, data: execFileSync('xz', ['-dc', xz], { maxBuffer: 1 << 28 }) });
    else if (!m.optional) throw new LabError(`${kernel.package}: no ${m.path}.ko`);
  }
  return out;
}

export function labCache(): string {
  const dir = process.env.PINLEDGER_LAB_CACHE ?? join(homedir(), '.cache', 'pinledger', 'lab');
  mkdirSync(dir, { recursive: true });
  return dir;
}

export { LabError };

function run(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new LabError(`${cmd} ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`);
  }
}

export interface Kernel {
  package: string;
  version: string;
  vmlinuz: string;
  modules: string;
}

/** The kernel image package a name resolves to (a metapackage names its image). */
function imagePackage(name: string): string {
  // An image names its full release (linux-image-6.1.0-57-amd64); linux-image-6.12-amd64 is a metapackage.
  if (/^linux-image-\d+\.\d+\.\d+/.test(name)) return name;
  const deps = run('apt-cache', ['depends', '--no-recommends', '--no-suggests', name]);
  const m = /Depends: (linux-image-\d[^\s]*)/.exec(deps);
  if (!m) throw new LabError(`${name}: no kernel image package among its dependencies`);
  return m[1]!;
}

/** Downloads and unpacks a Debian kernel image package into the cache, once. */
export function fetchKernel(name: string = DEFAULT_KERNEL_PACKAGE): Kernel {
  const pkg = imagePackage(name);
  const dir = join(labCache(), pkg);
  if (!existsSync(join(dir, 'boot'))) {
    mkdirSync(dir, { recursive: true });
    run('apt-get', ['download', pkg], dir);
    const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
    if (!deb) throw new LabError(`apt-get download ${pkg} left no .deb`);
    run('dpkg-deb', ['-x', deb, '.'], dir);
  }
  const vmlinuz = readdirSync(join(dir, 'boot')).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new LabError(`${pkg}: no vmlinuz in /boot`);
  const version = vmlinuz.slice('vmlinuz-'.length);
  return { package: pkg, version, vmlinuz: join(dir, 'boot', vmlinuz), modules: join(dir, 'lib', 'modules', version, 'kernel') };
}

/** The helper, built static with the host's gcc when its source is newer. */
export function buildHelper(root: string, name = 'vfio-lab'): string {
  const src = join(root, 'lab', 'helper', `${name}.c`);
  const bin = join(labCache(), name);
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) run('gcc', ['-O2', '-Wall', '-static', '-o', bin, src]);
  return bin;
}

/**
 * The lab's test mdev driver (lab/mdev), built against the kernel's Debian
 * headers package, installed with apt-get when missing (headers only; the
 * kernel itself is never installed).
 */
export function buildMdev(root: string, kernel: Kernel): Buffer {
  const headers = `/usr/src/linux-headers-${kernel.version}`;
  if (!existsSync(headers)) {
    try {
      run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', `linux-headers-${kernel.version}`]);
    } catch (e) {
      throw new LabError(`linux-headers-${kernel.version} is needed to build the test mdev driver: ${(e as Error).message}`);
    }
  }
  const dir = join(labCache(), `mdev-${kernel.version}`);
  const src = join(root, 'lab', 'mdev', 'pinledger_mdev.c');
  const ko = join(dir, 'pinledger_mdev.ko');
  if (!existsSync(ko) || statSync(ko).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'pinledger_mdev.c'), readFileSync(src));
    writeFileSync(join(dir, 'Kbuild'), readFileSync(join(root, 'lab', 'mdev', 'Kbuild')));
    run('make', ['-C', headers, `M=${dir}`, 'modules']);
  }
  return readFileSync(ko);
}

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in MODULES; do insmod /lib/modules/$m.ko || echo "LAB-ERROR insmod $m"; done
i=0; subst=""
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor):$(cat $d/device)" = "0x8086:0x10d3" ] || continue
  n=$(basename $d)
  [ -e $d/driver ] && echo $n > $d/driver/unbind
  echo vfio-pci > $d/driver_override; echo $n > /sys/bus/pci/drivers_probe
  g=$(basename $(readlink $d/iommu_group))
  [ -n "$dev0" ] || dev0=$n
  echo "DEV $i $n $g"
  subst="-e s#@G$i\\([^0-9]\\|\\$\\)#$g\\1#g -e s#@D$i\\([^0-9]\\|\\$\\)#$n\\1#g $subst"
  i=$((i+1))
done
for u in $(cat /mdevs); do
  echo $u > /sys/class/mdev_bus/pinledger/mdev_supported_types/pinledger-1/create || { echo "LAB-LOG $(ls /sys/class/mdev_bus/pinledger/mdev_supported_types/ 2>&1) $(ls /sys/class/mdev_bus/ 2>&1) $(dmesg | tail -5 | tr "\n" " ")"; echo "LAB-ERROR cannot create mdev $u"; }
  g=$(basename $(readlink /sys/bus/mdev/devices/$u/iommu_group))
  echo "MDEV $u $g"
  subst="-e s#@M$u#$g#g $subst"
done
echo "KERNEL $(uname -r)"
stty -F /dev/ttyS1 raw -echo 2>/dev/null
# A file back to the host: on the second serial port, between markers.
sendfile() { { echo "@@@ FILE $1"; cat "$2"; echo; echo "@@@ END $1"; } > /dev/ttyS1; }
CAPTURE_FUNCTIONS
CAPTURE_START
for f in $(ls /steps | sort -n); do
  echo "T $f"
  sed $subst /steps/$f > /tmp/steps
  /bin/vfio-lab /tmp/steps
done
QEMU_RUN
CAPTURE_STOP
echo LAB-DONE
poweroff -f
`;

/** What the guest does besides running the helper on each steps file. */
export interface GuestExtras {
  /** Run the project's capture script (tools/capture) while the steps run: one capture, attached once. */
  capture?: boolean;
  /** Run Debian's QEMU as a VMM assigning device 0 after the steps, under the same capture. */
  qemu?: QemuSpec;
}

export interface GuestRun {
  kernel: string;
  /** Files the guest sent back (captures, QEMU's log, /proc status), by name. */
  files: Map<string, string>;
  devices: { index: number; name: string; group: number }[];
  mdevs: { uuid: string; group: number }[];
  /** How long the capture took to attach, per capture. */
  attachMs: { name: string; ms: number }[];
  /** Helper output lines per trace index. */
  outputs: string[][];
  seconds: number;
}

/** Boots the guest once and runs each steps file in its own helper process, in order. */
export async function runGuest(
  root: string,
  kernel: Kernel,
  stepFiles: string[][],
  devices: number,
  mdevs: string[],
  extras: GuestExtras = {},
): Promise<GuestRun> {
  const helper = buildHelper(root);
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (!busybox) throw new LabError('busybox is needed (apt-get install busybox-static)');
  const modules = moduleFiles(kernel);
  if (mdevs.length > 0) modules.push({ name: 'pinledger_mdev', data: buildMdev(root, kernel) });
  const init = INIT.replace('MODULES', modules.map((m) => m.name).join(' '))
    .replace('CAPTURE_FUNCTIONS', extras.capture || extras.qemu ? captureInit.functions : '')
    .replace('CAPTURE_START', extras.capture || extras.qemu ? captureInit.start : ':')
    .replace('CAPTURE_STOP', extras.capture || extras.qemu ? captureInit.stop : ':')
    .replace('QEMU_RUN', extras.qemu ? qemuInit(extras.qemu) : '');
  const b = new Bundle();
  for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'lib/modules', 'steps']) b.dir(d);
  b.file('init', Buffer.from(init), 0o100755);
  b.file('bin/busybox', readFileSync(busybox), 0o100755);
  b.file('bin/vfio-lab', readFileSync(helper), 0o100755);
  for (const m of modules) b.file(`lib/modules/${m.name}.ko`, m.data);
  stepFiles.forEach((steps, i) => b.file(`steps/${i}`, Buffer.from(steps.join('\n') + '\n')));
  b.file('mdevs', Buffer.from(mdevs.join('\n') + '\n'));
  if (extras.capture || extras.qemu) captureFiles(root, b);
  if (extras.qemu) qemuFiles(buildHelper(root, 'memlock-exec'), b);
  const initrd = join(labCache(), `initrd-${process.pid}.gz`);
  writeFileSync(initrd, cpioNewc(b.entries));
  const filesOut = join(labCache(), `files-${process.pid}.txt`);
  const args = [
    '-machine', 'q35,kernel-irqchip=split', '-accel', 'tcg', '-m', String(GUEST_MEM_MIB), '-smp', '1',
    '-device', 'intel-iommu,intremap=on,aw-bits=48',
    ...Array.from({ length: Math.max(1, devices) }, () => ['-device', 'e1000e,romfile=']).flat(),
    '-serial', 'mon:stdio', '-serial', `file:${filesOut}`,
    '-net', 'none', '-nographic', '-no-reboot', '-kernel', kernel.vmlinuz, '-initrd', initrd,
    // loglevel=1: the kernel's own console messages (all but KERN_EMERG) would otherwise
    // interleave with the helper's lines on the one serial port and cut them.
    '-append', 'console=ttyS0 intel_iommu=on quiet loglevel=1 panic=-1',
  ];
  const t0 = Date.now();
  let files = '';
  const text = await new Promise<string>((resolve, reject) => {
    const q = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    // Generous: under TCG, with other tests' guests on the same two cores, bpftrace alone takes minutes to attach.
    const timer = setTimeout(() => q.kill('SIGKILL'), GUEST_TIMEOUT_MS);
    q.stdout.on('data', (d: Buffer) => (out += d.toString()));
    q.stderr.on('data', (d: Buffer) => (err += d.toString()));
    q.on('error', (e) => reject(new LabError(`qemu-system-x86_64: ${e.message} (apt-get install qemu-system-x86)`)));
    q.on('close', () => {
      clearTimeout(timer);
      rmSync(initrd, { force: true });
      files = existsSync(filesOut) ? readFileSync(filesOut, 'utf8') : '';
      rmSync(filesOut, { force: true });
      if (!out.includes('LAB-DONE')) reject(new LabError(`the lab guest did not finish:\n${(out + err).slice(-3000)}`));
      else resolve(out);
    });
  });
  const run = parseGuestConsole(text, stepFiles.length, Math.max(1, devices), (Date.now() - t0) / 1000);
  run.files = parseGuestFiles(files);
  return run;
}

/**
 * The guest's serial console: the helper's protocol lines (DEV, MDEV,
 * KERNEL, T, R, LAB-ERROR, LAB-LOG) among firmware and kernel output.
 * Every device the guest was given must be reported.
 */
export function parseGuestConsole(text: string, traces: number, devices: number, seconds: number): GuestRun {
  const run: GuestRun = { kernel: '', files: new Map(), attachMs: [], devices: [], mdevs: [], outputs: Array.from({ length: traces }, () => []), seconds };
  let current = -1;
  const log: string[] = [];
  // A bare \r ends a line too: the firmware's last output ("Booting from ROM..", escape codes, \r)
  // shares the serial line with the helper's first, and `.` would not cross the \r.
  const lines = text.split(/\r\n|\n|\r/);
  for (const raw of lines) {
    const line = raw.replace(/^.*?(?=(ATTACH|DEV|MDEV|KERNEL|T|R|LAB-ERROR|LAB-LOG) )/, '');
    let m: RegExpExecArray | null;
    if ((m = /^ATTACH (\S+) (\d+)/.exec(line))) run.attachMs.push({ name: m[1]!, ms: Number(m[2]) });
    else if ((m = /^DEV (\d+) (\S+) (\d+)/.exec(line))) run.devices.push({ index: Number(m[1]), name: m[2]!, group: Number(m[3]) });
    else if ((m = /^MDEV (\S+) (\d+)/.exec(line))) run.mdevs.push({ uuid: m[1]!, group: Number(m[2]) });
    else if ((m = /^KERNEL (\S+)/.exec(line))) run.kernel = m[1]!;
    else if ((m = /^T (\d+)/.exec(line))) current = Number(m[1]);
    else if (line.startsWith('R ') && current >= 0) run.outputs[current]!.push(line);
    else if (line.startsWith('LAB-LOG')) log.push(line.slice('LAB-LOG '.length));
    else if (line.startsWith('LAB-ERROR')) throw new LabError([line, ...log].join('\n'));
  }
  if (run.devices.length < devices) {
    const seen = lines.filter((l) => l.includes('DEV'));
    throw new LabError(`the guest reported ${run.devices.length} of ${devices} devices; its DEV lines: ${JSON.stringify(seen)}\n${text.slice(-2000)}`);
  }
  return run;
}

/**
 * The second serial port: files between `@@@ FILE name` and `@@@ END name`
 * lines (text, each ending with a newline). A file that does not end is an
 * error: the guest stopped mid-way.
 */
export function parseGuestFiles(text: string): Map<string, string> {
  const files = new Map<string, string>();
  let name: string | undefined;
  let lines: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const begin = /^@@@ FILE (\S+)$/.exec(line);
    if (begin) {
      if (name !== undefined) throw new LabError(`the guest's file ${name} was cut short by ${begin[1]}`);
      name = begin[1]!;
      lines = [];
    } else if (name !== undefined && line === `@@@ END ${name}`) {
      // sendfile ends the file with a newline of its own, so a last line without one is whole.
      if (lines.at(-1) === '') lines.pop();
      files.set(name, lines.length > 0 ? lines.join('\n') + '\n' : '');
      name = undefined;
    } else if (name !== undefined) lines.push(line);
  }
  if (name !== undefined) throw new LabError(`the guest's file ${name} was cut short (no end marker)`);
  return files;
}
