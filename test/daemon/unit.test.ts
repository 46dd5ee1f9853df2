import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

function unit(): Map<string, string[]> {
  const text = readFileSync(new URL('../../packaging/systemd/pinledger.service', import.meta.url), 'utf8');
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    const k = `${section}.${line.slice(0, eq)}`;
    keys.set(k, [...(keys.get(k) ?? []), line.slice(eq + 1)]);
  }
  return keys;
}

describe('packaging/systemd/pinledger.service', () => {
  it('runs the daemon on its own state directory and restarts it on failure', () => {
    const u = unit();
    expect(u.get('Service.Type')).toEqual(['simple']);
    expect(u.get('Service.Restart')).toEqual(['on-failure']);
    expect(u.get('Service.StateDirectory')).toEqual(['pinledger']);
    const exec = u.get('Service.ExecStart')![0]!.split(' ');
    expect(exec.slice(1, 3)).toEqual(['/opt/pinledger/bin/pinledger.js', 'daemon']);
    expect(exec[exec.indexOf('--watch') + 1]!.startsWith('/var/lib/pinledger/')).toBe(true);
    expect(exec[exec.indexOf('--db') + 1]!.startsWith('/var/lib/pinledger/')).toBe(true);
    expect(u.get('Service.ReadWritePaths')).toEqual(['/var/lib/pinledger']);
    // The config file can only come from the root-owned /etc/pinledger, never from the drop folder or the state directory.
    expect(u.get('Service.ConfigurationDirectory')).toEqual(['pinledger']);
    expect(u.get('Service.WorkingDirectory')).toEqual(['/etc/pinledger']);
    expect(exec).not.toContain('--config');
    expect(u.get('Install.WantedBy')).toEqual(['multi-user.target']);
  });
});
