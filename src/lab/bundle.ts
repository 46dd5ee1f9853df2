/**
 * The lab guest's initramfs contents: files at their guest paths, with
 * every parent directory made first (the kernel's initramfs unpacker does
 * not create them), programs from this host with the shared libraries
 * `ldd` names, and whole directories with symlinks resolved.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CpioEntry } from './cpio.js';
import { LabError } from './lab-error.js';

export class Bundle {
  readonly entries: CpioEntry[] = [];
  private readonly paths = new Set<string>();

  dir(path: string): void {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (this.paths.has(d)) continue;
      this.paths.add(d);
      this.entries.push({ path: d });
    }
  }

  file(path: string, data: Buffer, mode = 0o100644): void {
    const p = path.replace(/^\/+/, '');
    if (this.paths.has(p)) return;
    this.dir(p.split('/').slice(0, -1).join('/'));
    this.paths.add(p);
    this.entries.push({ path: p, data, mode });
  }

  /** A host file at the same path in the guest (its target's contents when it is a symlink). */
  hostFile(path: string, mode?: number): void {
    const real = realpathSync(path);
    this.file(path, readFileSync(real), mode ?? (statSync(real).mode & 0o111 ? 0o100755 : 0o100644));
  }

  /** A host program and the shared libraries it loads, at their host paths. */
  program(path: string): void {
    if (!existsSync(path)) throw new LabError(`${path} is needed in the lab guest and is not installed`);
    this.hostFile(path, 0o100755);
    let out: string;
    try {
      out = execFileSync('ldd', [path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch {
      return; // a static program: `ldd` says "not a dynamic executable" and fails
    }
    for (const line of out.split('\n')) {
      const m = /=> (\/\S+)/.exec(line) ?? /^\s*(\/\S+)/.exec(line);
      if (m) this.hostFile(m[1]!, 0o100755);
      else if (/not found/.test(line)) throw new LabError(`${path}: ${line.trim()}`);
    }
  }

  /** Every file under a host directory, symlinks resolved, at the same paths. */
  tree(path: string): void {
    for (const name of readdirSync(path)) {
      const p = join(path, name);
      if (!existsSync(p)) continue; // a dangling symlink: nothing to copy
      if (statSync(p).isDirectory()) this.tree(p);
      else this.hostFile(p);
    }
  }
}
