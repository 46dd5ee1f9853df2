/**
 * The CLI says no before it acts (issue 13, item 6): every bad usage exits
 * 2 with exactly one line on stderr, no stack trace, and no side effect (no
 * database, no output file, no drop folder, no daemon). Also: environment
 * and config file values that are not options of the running command, the
 * shipped systemd unit, help on every command, and findings' --limit note.
 */
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const bin = join(root, 'bin/pinledger.js');
const sample = (n: string) => join(root, 'traces/samples', n);

/** The environment without the developer's PINLEDGER_* variables. */
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PINLEDGER_'))) as Record<string, string>;

function run(cwd: string, args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', env: { ...baseEnv, ...env }, timeout: 20000 });
}

/** Every path under dir, with sizes, so "nothing was written" is one comparison. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const st = statSync(p);
      out.push(`${rel}${n}${st.isDirectory() ? '/' : ` ${st.size}`}`);
      if (st.isDirectory()) walk(p, `${rel}${n}/`);
    }
  };
  walk(dir, '');
  return out;
}

/** Each test runs many CLI processes; the machine is shared. */
const SLOW = { timeout: 120_000 };

const fresh = (tag: string) => mkdtempSync(join(tmpdir(), `pinledger-usage-${tag}-`));

/**
 * A usage error: exit 2, nothing on stdout, exactly `line` on stderr (one
 * line, no stack), and the working directory exactly as it was.
 */
function expectRefused(cwd: string, args: string[], line: string | RegExp, env: Record<string, string> = {}): void {
  const before = tree(cwd);
  const r = run(cwd, args, env);
  const what = `pinledger ${args.join(' ')}`;
  expect(r.status, `${what}: ${r.stderr}`).toBe(2);
  expect(r.stdout, what).toBe('');
  expect(r.stderr.endsWith('\n'), what).toBe(true);
  const lines = r.stderr.slice(0, -1).split('\n');
  expect(lines, what).toHaveLength(1);
  expect(r.stderr, what).not.toMatch(/^\s+at /m);
  if (typeof line === 'string') expect(lines[0], what).toBe(line);
  else expect(lines[0], what).toMatch(line);
  expect(tree(cwd), `${what} left files behind`).toEqual(before);
}

/** A database with two traces in it (vm-boot: pid 4242, one finding; vgpu-leak: ten findings). */
let dbDir = '';
let db = '';
beforeAll(() => {
  dbDir = fresh('db');
  db = join(dbDir, 'p.db');
  const r = run(dbDir, ['ingest', sample('vm-boot.jsonl'), sample('leak.jsonl'), '--db', db]);
  expect(r.status, r.stderr).toBe(0);
}, 120_000);

describe('bad usage: exit 2, one line, nothing done', () => {
  it('daemon with a misspelt option does not start on the default folder (strict mode holds)', SLOW, () => {
    const cwd = fresh('daemon');
    expectRefused(cwd, ['daemon', '--wacth', 'drop'], 'pinledger: Unknown argument: wacth (see pinledger daemon --help)');
    expect(existsSync(join(cwd, 'traces'))).toBe(false);
    expect(existsSync(join(cwd, 'pinledger.db'))).toBe(false);
  });

  it('.ci/run hook: daemon --no-such-option exits 2 at once and creates no database', SLOW, () => {
    const cwd = fresh('ci');
    const started = Date.now();
    expectRefused(cwd, ['daemon', '--no-such-option', '--watch', join(cwd, 'in'), '--db', join(cwd, 'x.db')], 'pinledger: Unknown argument: such-option (see pinledger daemon --help)');
    expect(Date.now() - started).toBeLessThan(10000);
    expect(existsSync(join(cwd, 'x.db'))).toBe(false);
    expect(existsSync(join(cwd, 'in'))).toBe(false);
  });

  it('unknown options on every command', SLOW, () => {
    const cwd = fresh('unknown');
    const cases: [string[], string, string][] = [
      [['replay', sample('vm-boot.jsonl'), '--jsn'], 'replay', 'jsn'],
      [['ingest', sample('vm-boot.jsonl'), '--dbb', 'x.db'], 'ingest', 'dbb'],
      [['traces', '--db', db, '--limit', '3'], 'traces', 'limit'],
      [['findings', '--db', db, '--pid', '1'], 'findings', 'pid'],
      [['accounting', '--db', db, '--trace', 'host42/vm-boot', '--at', '3'], 'accounting', 'at'],
      [['state', '--db', db, '--trace', 'host42/vm-boot', '--seq', '3'], 'state', 'seq'],
      [['diff', '--db', db, '--trace', 'host42/vm-boot', '--backend', 'upstream'], 'diff', 'backend'],
      [['sql', 'SELECT 1', '--db', db, '--csv'], 'sql', 'csv'],
      [['report', '--db', db, '--trace', 'host42/vm-boot', '--html', 'x.html'], 'report', 'html'],
      [['gen', 'vm-boot', '-o', 'x.jsonl', '--size', '4G'], 'gen', 'size'],
      [['import', 'qemu-trace', sample('vm-boot.jsonl'), '-o', 'x.jsonl', '--format', 'log'], 'import', 'format'],
      [['lab', 'run', sample('vm-boot.jsonl'), '-o', 'x.jsonl', '--qemu', 'q'], 'lab run', 'qemu'],
    ];
    for (const [args, cmd, name] of cases) expectRefused(cwd, args, `pinledger: Unknown argument: ${name} (see pinledger ${cmd} --help)`);
    expectRefused(cwd, ['frobnicate'], 'pinledger: Unknown argument: frobnicate (see pinledger --help)');
    expectRefused(cwd, [], 'pinledger: Name a command: pinledger --help lists them (see pinledger --help)');
    expectRefused(cwd, ['traces', 'extra', '--db', db], 'pinledger: Unknown argument: extra (see pinledger traces --help)');
  });

  it('missing required options and arguments', SLOW, () => {
    const cwd = fresh('missing');
    expectRefused(cwd, ['gen', 'vm-boot'], 'pinledger: Missing required argument: out (see pinledger gen --help)');
    expectRefused(cwd, ['gen', 'vm-boot', '-o'], 'pinledger: -o/--out needs a value (see pinledger gen --help)');
    expectRefused(cwd, ['import', 'qemu-trace', sample('vm-boot.jsonl')], 'pinledger: Missing required argument: out (see pinledger import --help)');
    expectRefused(cwd, ['lab', 'run', sample('vm-boot.jsonl')], 'pinledger: Missing required argument: out (see pinledger lab run --help)');
    expectRefused(cwd, ['accounting', '--db', db], 'pinledger: Missing required argument: trace (see pinledger accounting --help)');
    expectRefused(cwd, ['report', '--db', db, '--trace'], 'pinledger: --trace needs a value (see pinledger report --help)');
    expectRefused(cwd, ['replay'], 'pinledger: Missing arguments: pinledger replay <files..> (see pinledger replay --help)');
    expectRefused(cwd, ['lab'], 'pinledger: Name a lab command: run, qemu (see pinledger lab --help)');
    expectRefused(cwd, ['lab', 'qemu'], 'pinledger: Missing required argument: out (see pinledger lab qemu --help)');
    expectRefused(cwd, ['lab', 'qemu', '-o', 'q', '--memory', '3G'], 'pinledger: --memory: a whole number of MiB from 16M to 2G (the lab guest holds it) (see pinledger lab qemu --help)');
    expectRefused(cwd, ['lab', 'qemu', '-o', 'q', '--memlock-limit', 'lots'], 'pinledger: --memlock-limit "lots": expected bytes or a size such as 64M, 2GiB, 65536K (see pinledger lab qemu --help)');
    writeFileSync(join(cwd, 'a-file'), 'x');
    expectRefused(cwd, ['lab', 'qemu', '-o', 'a-file'], 'pinledger: -o/--out a-file: a file is there; name a directory (see pinledger lab qemu --help)');
    expectRefused(cwd, ['lab', 'run', sample('vm-boot.jsonl'), '-o', 'same', '--capture', 'same'], 'pinledger: --capture and -o/--out must be different paths');
    expectRefused(cwd, ['lab', 'run'], 'pinledger: Missing arguments: pinledger lab run <traces..> (see pinledger lab run --help)');
  });

  it('bad choices: gen foo, import strace, lab foo, --backend foo, --severity, --status', SLOW, () => {
    const cwd = fresh('choices');
    expectRefused(cwd, ['gen', 'foo', '-o', 'x.jsonl'], 'pinledger: workload "foo": expected vm-boot, vgpu-churn, viommu, mixed (see pinledger gen --help)');
    expect(existsSync(join(cwd, 'x.jsonl'))).toBe(false);
    expectRefused(cwd, ['import', 'strace', sample('vm-boot.jsonl'), '-o', 'y.jsonl'], 'pinledger: source "strace": expected qemu-trace (see pinledger import --help)');
    expectRefused(cwd, ['lab', 'foo'], 'pinledger: Unknown argument: foo (see pinledger lab --help)');
    const backend = (cmd: string, v: string) => `pinledger: --backend: Unknown backend "${v}"; known: upstream, rfc-v5, iommufd-compat, all, auto (see pinledger ${cmd} --help)`;
    expectRefused(cwd, ['replay', sample('vm-boot.jsonl'), '--backend', 'foo'], backend('replay', 'foo'));
    expectRefused(cwd, ['replay', sample('vm-boot.jsonl'), '--backend', 'upstream,nope'], backend('replay', 'nope'));
    expectRefused(cwd, ['ingest', sample('vm-boot.jsonl'), '--backend', 'foo', '--db', 'x.db'], backend('ingest', 'foo'));
    expectRefused(cwd, ['findings', '--db', db, '--backend', 'foo'], /^pinledger: Invalid values: Argument: backend, Given: "foo", Choices: "upstream", "rfc-v5", "iommufd-compat" \(see pinledger findings --help\)$/);
    expectRefused(cwd, ['findings', '--db', db, '--severity', 'fatal'], /^pinledger: Invalid values: Argument: severity, Given: "fatal", Choices: "error", "warning", "info" \(see pinledger findings --help\)$/);
    expectRefused(cwd, ['traces', '--db', db, '--status', 'bad'], /^pinledger: Invalid values: Argument: status, Given: "bad", Choices: "ok", "quarantined" \(see pinledger traces --help\)$/);
    expectRefused(cwd, ['diff', '--db', db, '--trace', 'host42/vm-boot', '--backends', 'upstream'], 'pinledger: --backends "upstream": expected two different designs of upstream, rfc-v5, iommufd-compat, comma separated (see pinledger diff --help)');
  });

  it('bad values: numbers, sizes, --since, missing files', SLOW, () => {
    const cwd = fresh('values');
    expectRefused(cwd, ['findings', '--db', db, '--limit', 'abc'], 'pinledger: --limit: expected a whole number of at least 1 (see pinledger findings --help)');
    expectRefused(cwd, ['findings', '--db', db, '--limit', '0'], 'pinledger: --limit 0: expected a whole number of at least 1 (see pinledger findings --help)');
    expectRefused(cwd, ['accounting', '--db', db, '--trace', 'host42/vm-boot', '--pid', 'x'], 'pinledger: --pid: expected a whole number (see pinledger accounting --help)');
    expectRefused(cwd, ['daemon', '--stable-ms', '-5', '--watch', 'in', '--db', 'x.db'], 'pinledger: --stable-ms -5: expected a whole number (see pinledger daemon --help)');
    expectRefused(cwd, ['gen', 'vm-boot', '--ram', '4Q', '-o', 'x.jsonl'], 'pinledger: --ram "4Q": expected bytes or a size such as 64M, 2GiB, 65536K (see pinledger gen --help)');
    expectRefused(cwd, ['traces', '--db', db, '--since', 'yesterday'], 'pinledger: --since "yesterday": expected an ISO date/time or a duration such as 30m, 12h, 7d (see pinledger traces --help)');
    expectRefused(cwd, ['ingest', join(cwd, 'missing.jsonl'), '--db', 'x.db'], `pinledger: trace file ${join(cwd, 'missing.jsonl')}: no such file (see pinledger ingest --help)`);
    expectRefused(cwd, ['ingest', sample('vm-boot.jsonl'), dbDir, '--db', 'x.db'], `pinledger: trace file ${dbDir}: not a file (see pinledger ingest --help)`);
    expectRefused(cwd, ['import', 'qemu-trace', 'nope.log', '-o', 'x.jsonl'], 'pinledger: log nope.log: no such file (see pinledger import --help)');
    mkdirSync(join(cwd, 'out'));
    expectRefused(cwd, ['gen', 'vm-boot', '-o', 'out'], 'pinledger: -o/--out out: is a directory (see pinledger gen --help)');
    expectRefused(cwd, ['gen', 'vm-boot', '-o', 'nodir/x.jsonl'], 'pinledger: -o/--out nodir/x.jsonl: no directory nodir (see pinledger gen --help)');
    expectRefused(cwd, ['report', '--db', db, '--trace', 'host42/vm-boot', '-o', 'nodir/x.html'], 'pinledger: -o/--out nodir/x.html: no directory nodir (see pinledger report --help)');
    expectRefused(cwd, ['daemon', '--watch', sample('vm-boot.jsonl'), '--db', 'x.db'], `pinledger: --watch ${sample('vm-boot.jsonl')}: not a directory`);
    expectRefused(cwd, ['daemon', '--watch', 'in', '--db', 'x.db'], 'pinledger: PINLEDGER_LOG_LEVEL=loud: expected one of fatal, error, warn, info, debug, trace, silent', { PINLEDGER_LOG_LEVEL: 'loud' });
  });

  it('an unknown --trace or --pid names what exists, before any output', SLOW, () => {
    const cwd = fresh('unknown-trace');
    const traces = 'traces: host42/vgpu-leak, host42/vm-boot';
    expectRefused(cwd, ['accounting', '--db', db, '--trace', 'nope'], `pinledger: No trace "nope"; ${traces}`);
    expectRefused(cwd, ['state', '--db', db, '--trace', 'nope'], `pinledger: No trace "nope"; ${traces}`);
    expectRefused(cwd, ['findings', '--db', db, '--trace', 'nope'], `pinledger: No trace "nope"; ${traces}`);
    expectRefused(cwd, ['diff', '--db', db, '--trace', 'nope'], `pinledger: No trace "nope"; ${traces}`);
    expectRefused(cwd, ['report', '--db', db, '--trace', 'nope', '-o', 'x.html'], `pinledger: No trace "nope"; ${traces}`);
    for (const cmd of ['accounting', 'state', 'report']) {
      expectRefused(cwd, [cmd, '--db', db, '--trace', 'host42/vm-boot', '--pid', '5', ...(cmd === 'report' ? ['-o', 'x.html'] : [])], 'pinledger: No pid 5 in trace "host42/vm-boot"; pids: 4242');
    }
    expect(existsSync(join(cwd, 'report.html'))).toBe(false);
  });

  it('report -o writes where it is told (not ./report.html)', SLOW, () => {
    const cwd = fresh('report');
    const r = run(cwd, ['report', '--db', db, '--trace', 'host42/vm-boot', '-o', 'x.html']);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(cwd)).toEqual(['x.html']);
    expect(r.stdout).toBe('x.html: report of trace host42/vm-boot\n');
  });
});

describe('databases that are not pinledger databases: exit 2, one line, untouched', () => {
  it('a text file, a directory, an empty file, another program\'s SQLite database', SLOW, () => {
    const cwd = fresh('baddb');
    writeFileSync(join(cwd, 'text.db'), 'this is not a database at all, just text\n');
    mkdirSync(join(cwd, 'dir.db'));
    writeFileSync(join(cwd, 'empty.db'), '');
    const other = new Database(join(cwd, 'other.db'));
    other.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices (total) VALUES (9.5)');
    other.close();
    const cases: [string, string][] = [
      ['text.db', 'text.db is not an SQLite database'],
      ['dir.db', 'dir.db is a directory, not a database'],
      ['other.db', "other.db is an SQLite database of another program (tables invoices), not pinledger's"],
    ];
    for (const [file, msg] of cases) {
      for (const cmd of [['traces'], ['accounting', '--trace', 't'], ['report', '--trace', 't']]) {
        expectRefused(cwd, [...cmd, '--db', file], `pinledger: ${msg}`);
      }
      expectRefused(cwd, ['ingest', sample('vm-boot.jsonl'), '--db', file], `pinledger: ${msg}`);
      expectRefused(cwd, ['daemon', '--watch', 'in', '--db', file], `pinledger: ${msg}`);
    }
    // An empty file has nothing to read; ingest may make it a pinledger database.
    expectRefused(cwd, ['traces', '--db', 'empty.db'], 'pinledger: empty.db is an empty database: ingest traces first (pinledger daemon, or pinledger ingest FILE)');
    expectRefused(cwd, ['ingest', sample('vm-boot.jsonl'), '--db', join(cwd, 'no-such-dir/x.db')], `pinledger: cannot create database ${join(cwd, 'no-such-dir/x.db')}: no directory ${join(cwd, 'no-such-dir')}`);
    const check = new Database(join(cwd, 'other.db'), { readonly: true });
    expect(check.prepare('SELECT name FROM sqlite_master').all()).toEqual([{ name: 'invoices' }]);
    check.close();
  });
});

describe('config file errors: exit 2, naming the file (and line)', () => {
  it('a JSON syntax error, not an object, an unknown key, a missing file', SLOW, () => {
    const cwd = fresh('config');
    writeFileSync(join(cwd, 'pinledger.config.json'), '{\n  "watch": "/srv/drop",\n  "db": }\n');
    expectRefused(cwd, ['traces'], "pinledger: config pinledger.config.json:3: Unexpected token '}'");
    expectRefused(cwd, ['daemon'], "pinledger: config pinledger.config.json:3: Unexpected token '}'");
    writeFileSync(join(cwd, 'pinledger.config.json'), '{"db": "x.db",}');
    expectRefused(cwd, ['traces'], 'pinledger: config pinledger.config.json:1: Expected double-quoted property name');
    writeFileSync(join(cwd, 'pinledger.config.json'), '{"db": "x.db"');
    expectRefused(cwd, ['traces'], 'pinledger: config pinledger.config.json:1: Unexpected end of JSON input');
    const notObjects: [string, string][] = [['["x.db"]', 'an array'], ['"x.db"', 'a string'], ['null', 'null'], ['42', 'a number'], ['true', 'true']];
    for (const [text, what] of notObjects) {
      writeFileSync(join(cwd, 'pinledger.config.json'), text);
      expectRefused(cwd, ['traces'], `pinledger: config pinledger.config.json: expected a JSON object of options, such as {"watch": "/srv/drop", "db": "/srv/pinledger.db"}, not ${what}`);
    }
    writeFileSync(join(cwd, 'pinledger.config.json'), '{"wacth": "/srv/drop"}');
    expectRefused(cwd, ['daemon'], 'pinledger: config pinledger.config.json: "wacth" is not an option of any pinledger command');
    expectRefused(cwd, ['replay', sample('vm-boot.jsonl')], 'pinledger: config pinledger.config.json: "wacth" is not an option of any pinledger command');
    expectRefused(cwd, ['traces', '--config', 'nope.json'], 'pinledger: config nope.json: no such file');
    expectRefused(cwd, ['traces'], 'pinledger: config nope.json: no such file', { PINLEDGER_CONFIG: 'nope.json' });
  });
});

describe('environment variables and the config file set only the options a command has', () => {
  it('PINLEDGER_LOG_LEVEL, PINLEDGER_LAB_CACHE, PINLEDGER_DEBUG, PINLEDGER_CONFIG break no command', SLOW, () => {
    const cwd = fresh('env');
    const env = { PINLEDGER_LOG_LEVEL: 'info', PINLEDGER_LAB_CACHE: join(cwd, 'cache'), PINLEDGER_DEBUG: '0', PINLEDGER_SOMETHING_ELSE: '1' };
    const t = run(cwd, ['traces', '--db', db, '--json'], env);
    expect(t.status, t.stderr).toBe(0);
    expect((JSON.parse(t.stdout) as { traces: { trace_id: string }[] }).traces.map((x) => x.trace_id)).toEqual(['host42/vgpu-leak', 'host42/vm-boot']);
    const r = run(cwd, ['replay', sample('vm-boot.jsonl'), '--json'], env);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).trace_id).toBe('host42/vm-boot');
    const g = run(cwd, ['gen', 'vm-boot', '-o', 'g.jsonl'], env);
    expect(g.status, g.stderr).toBe(0);
    expect(g.stderr).toBe('');
    // PINLEDGER_DB is an option of traces, not of replay.
    const d = run(cwd, ['traces', '--json'], { ...env, PINLEDGER_DB: db });
    expect(d.status, d.stderr).toBe(0);
    expect(run(cwd, ['replay', sample('vm-boot.jsonl')], { PINLEDGER_DB: db, PINLEDGER_WATCH: 'x' }).status).toBe(0);
    // An option typed on the command line is still checked, whatever the environment holds.
    expectRefused(cwd, ['traces', '--db', db, '--log-level', 'info'], 'pinledger: Unknown argument: log-level (see pinledger traces --help)', env);
  });

  it("the README's config example serves every command, also those without --watch", SLOW, () => {
    const cwd = fresh('readme-config');
    writeFileSync(join(cwd, 'pinledger.config.json'), JSON.stringify({ watch: '/srv/drop', db }));
    const t = run(cwd, ['traces', '--json']);
    expect(t.status, t.stderr).toBe(0);
    expect((JSON.parse(t.stdout) as { traces: unknown[] }).traces).toHaveLength(2);
    const r = run(cwd, ['replay', sample('vm-boot.jsonl')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const g = run(cwd, ['gen', 'vm-boot', '-o', 'g.jsonl']);
    expect(g.status, g.stderr).toBe(0);
    expect(JSON.parse(run(cwd, ['sql', 'SELECT count(*) AS n FROM traces', '--json']).stdout).rows).toEqual([{ n: 2 }]);
    // The command line wins over the environment, the environment over the file.
    const other = join(cwd, 'env.db');
    expectRefused(cwd, ['traces'], `pinledger: No database at ${other}: ingest traces first (pinledger daemon, or pinledger ingest FILE)`, { PINLEDGER_DB: other });
    expect(run(cwd, ['traces', '--db', db], { PINLEDGER_DB: other }).status).toBe(0);
  });
});

describe('internal errors: one line, exit 70, the stack only with PINLEDGER_DEBUG=1', () => {
  it('a database of our schema version with its tables broken', SLOW, () => {
    const cwd = fresh('internal');
    const version = Math.max(...readdirSync(join(root, 'schema/migrations')).filter((f) => /^\d+_.*\.sql$/.test(f)).map((f) => Number(f.split('_')[0])));
    const broken = new Database(join(cwd, 'broken.db'));
    broken.exec('CREATE TABLE traces (trace_id TEXT)');
    broken.pragma(`user_version = ${version}`);
    broken.close();
    const r = run(cwd, ['traces', '--db', 'broken.db']);
    expect(r.status).toBe(70);
    expect(r.stderr).toMatch(/^pinledger: internal error: no such (column|table): [\w.]+\n$/);
    const d = run(cwd, ['traces', '--db', 'broken.db'], { PINLEDGER_DEBUG: '1' });
    expect(d.status).toBe(70);
    expect(d.stderr.split('\n')[0]).toMatch(/^pinledger: internal error: no such (column|table): [\w.]+$/);
    expect(d.stderr).toMatch(/^\s+at /m);
  });
});

describe('the shipped systemd unit', () => {
  it("starts with the unit's command line and Environment, logs ready, ingests, and exits 0 on SIGTERM", SLOW, async () => {
    const text = readFileSync(join(root, 'packaging/systemd/pinledger.service'), 'utf8');
    const values = (key: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${key}=`))
        .map((l) => l.slice(key.length + 1));
    const state = fresh('systemd');
    const conf = fresh('systemd-etc');
    const place = (s: string) => s.replaceAll('/usr/bin/node', process.execPath).replaceAll('/opt/pinledger', root).replaceAll('/var/lib/pinledger', state).replaceAll('/etc/pinledger', conf);
    const [cmd, ...args] = place(values('ExecStart')[0]!).split(' ');
    const env: Record<string, string> = {};
    for (const v of values('Environment').flatMap((e) => e.split(' '))) env[v.slice(0, v.indexOf('='))] = v.slice(v.indexOf('=') + 1);
    expect(env).toEqual({ PINLEDGER_LOG_LEVEL: 'info' });
    const cwd = place(values('WorkingDirectory')[0]!);
    expect(cwd).toBe(conf);
    // A config planted in the state directory is not the unit's.
    writeFileSync(join(state, 'pinledger.config.json'), JSON.stringify({ 'stable-ms': 100000000 }));
    mkdirSync(join(state, 'incoming'));
    copyFileSync(sample('vm-boot.jsonl'), join(state, 'incoming/vm-boot.jsonl'));
    // systemd starts services with a minimal environment.
    const child = spawn(cmd!, args, { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((res) => child.on('exit', (code, signal) => res([code, signal])));
    const logs: { msg?: string; level?: number; status?: string }[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready and ingested in time; logs ${JSON.stringify(logs)}; stderr ${stderr}`)), 20000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        logs.push(JSON.parse(line) as { msg?: string });
        if (logs.some((l) => l.msg === 'ready') && logs.some((l) => l.status === 'ingested')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    child.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
    expect(stderr).toBe('');
    expect(logs.map((l) => l.msg).slice(-2)).toEqual(['stopping', 'stopped']);
    expect(logs.every((l) => l.level === 30)).toBe(true);
    expect(existsSync(join(state, 'incoming/processed/vm-boot.jsonl'))).toBe(true);
    expect(existsSync(join(state, 'pinledger.db'))).toBe(true);
  });
});

describe('help', () => {
  const commands = ['replay', 'ingest', 'daemon', 'traces', 'findings', 'accounting', 'state', 'diff', 'sql', 'report', 'gen', 'import', 'lab', 'lab run', 'lab qemu'];

  it('every command has an example', SLOW, () => {
    const cwd = fresh('help');
    for (const c of ['', ...commands]) {
      const r = run(cwd, [...c.split(' ').filter(Boolean), '--help']);
      expect(r.status, c).toBe(0);
      expect(r.stderr, c).toBe('');
      const examples = r.stdout.split('\n').slice(r.stdout.split('\n').indexOf('Examples:') + 1);
      expect(r.stdout.split('\n'), c).toContain('Examples:');
      expect(examples[0], c).toMatch(/^ {2}pinledger \S/);
    }
    expect(readdirSync(cwd)).toEqual([]);
  });

  it.skipIf(!existsSync('/usr/bin/script'))('is as wide as the terminal', SLOW, () => {
    const width = (cols: number) => {
      const r = spawnSync('/usr/bin/script', ['-qec', `stty cols ${cols} rows 50; "${process.execPath}" "${bin}" daemon --help`, '/dev/null'], { encoding: 'utf8', env: baseEnv });
      expect(r.status).toBe(0);
      return Math.max(...r.stdout.replace(/\r/g, '').split('\n').map((l) => l.length));
    };
    expect(width(200)).toBeGreaterThan(120);
    expect(width(200)).toBeLessThanOrEqual(200);
    expect(width(70)).toBeLessThanOrEqual(70);
  });
});

describe('findings says when it stopped at --limit', () => {
  it('human output ends with a note, --json has "truncated"', SLOW, () => {
    const cwd = fresh('limit');
    const all = JSON.parse(run(cwd, ['findings', '--db', db, '--json']).stdout) as { findings: unknown[]; truncated: boolean };
    expect(all.findings).toHaveLength(11);
    expect(all.truncated).toBe(false);
    const cut = JSON.parse(run(cwd, ['findings', '--db', db, '--json', '--limit', '3']).stdout) as { findings: { id: number }[]; truncated: boolean };
    expect(cut.findings.map((f) => f.id)).toEqual((all.findings as { id: number }[]).slice(0, 3).map((f) => f.id));
    expect(cut.truncated).toBe(true);
    expect((JSON.parse(run(cwd, ['findings', '--db', db, '--json', '--limit', '11']).stdout) as { truncated: boolean }).truncated).toBe(false);
    const human = run(cwd, ['findings', '--db', db, '--limit', '3']);
    expect(human.status).toBe(0);
    expect(human.stdout.trimEnd().split('\n').at(-1)).toBe('(stopped at --limit 3; more findings match: raise --limit)');
    expect(run(cwd, ['findings', '--db', db, '--limit', '11']).stdout).not.toContain('stopped at --limit');
  });
});
