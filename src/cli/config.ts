/**
 * Where option values come from besides the command line: `PINLEDGER_*`
 * environment variables and a JSON config file (`--config FILE`,
 * `PINLEDGER_CONFIG`, or ./pinledger.config.json when present). The
 * command line wins over the environment, the environment over the file.
 *
 * The rule (README, daemon section): the environment and the config file
 * supply values only for options the running command declares; everything
 * else in them is left alone for that command. So one config file serves
 * every command (`{"watch": ..., "db": ...}` gives `traces` its --db and
 * is no error for `replay`, which has neither), and variables such as
 * PINLEDGER_LOG_LEVEL, PINLEDGER_LAB_CACHE or PINLEDGER_DEBUG, which are
 * not options, never break a command. A key of the config file that is an
 * option of no pinledger command at all is refused (exit 2, naming the key
 * and the file), since it can only be a typo; unknown PINLEDGER_*
 * variables are not refused, as other tools and the test suite share the
 * prefix.
 *
 * The implicit ./pinledger.config.json (the daemon runs as root on a
 * folder others write into) is read only when it is safe to: never when
 * the working directory is the drop folder or inside it, and only when it
 * is a regular file (not a link) owned by root or the effective uid and
 * not writable by group or others, as sshd's StrictModes asks. Otherwise
 * it is ignored with one line on stderr. `--config` and PINLEDGER_CONFIG
 * name a file explicitly and are read as given.
 */
import { lstatSync, readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `foo-bar` and `fooBar` alike. */
export function camel(k: string): string {
  return k.replace(/[-_]+([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * Every option name (and alias) any command declares, found by running
 * each builder on a recorder instead of yargs; subcommands too.
 */
export function optionsOfCommands(commands: readonly { builder?: unknown }[]): Set<string> {
  const names = new Set<string>();
  const record = (builder: unknown) => {
    if (typeof builder === 'object' && builder !== null) {
      for (const [k, o] of Object.entries(builder as Record<string, { alias?: string | string[] }>)) add(k, o);
      return;
    }
    if (typeof builder !== 'function') return;
    const proxy: unknown = new Proxy(
      {},
      {
        get: (_t, prop) => {
          if (prop === 'option' || prop === 'options') {
            return (k: string | Record<string, { alias?: string | string[] }>, o?: { alias?: string | string[] }) => {
              if (typeof k === 'string') add(k, o);
              else for (const [kk, oo] of Object.entries(k)) add(kk, oo);
              return proxy;
            };
          }
          if (prop === 'command') {
            return (m: unknown) => {
              if (typeof m === 'object' && m !== null) record((m as { builder?: unknown }).builder);
              return proxy;
            };
          }
          return () => proxy;
        },
      },
    );
    (builder as (y: unknown) => unknown)(proxy);
  };
  const add = (k: string, o?: { alias?: string | string[] }) => {
    for (const n of [k, ...(o?.alias === undefined ? [] : Array.isArray(o.alias) ? o.alias : [o.alias])]) {
      names.add(n);
      names.add(camel(n));
    }
  };
  for (const c of commands) record(c.builder);
  return names;
}

/** The file as the user would name it: relative to the working directory when inside it. */
export function shown(path: string): string {
  const r = relative(process.cwd(), path);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : path;
}

/**
 * Where JSON.parse would fail, with a message in V8's words but without
 * its excerpt (which spans lines): V8 does not always give the position.
 */
export function jsonErrorAt(text: string): { offset: number; message: string } | undefined {
  let i = 0;
  const fail = (message: string): never => {
    throw { offset: i, message };
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const unexpected = (): never => (i >= text.length ? fail('Unexpected end of JSON input') : fail(`Unexpected token ${JSON.stringify(text[i]).replace(/^"|"$/g, "'")}`));
  const str = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      const c = text.charCodeAt(i);
      if (c < 0x20) fail('Bad control character in string literal');
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('Bad Unicode escape');
          i += 4;
        } else if (i >= text.length || !'"\\/bfnrt'.includes(text[i]!)) fail('Bad escaped character');
      }
      i++;
    }
    if (i >= text.length) fail('Unterminated string in JSON');
    i++;
  };
  const value = (depth: number): void => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      if (depth > 1000) fail('Too deeply nested');
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) return void i++;
      for (;;) {
        if (close === '}') {
          ws();
          if (text[i] !== '"') i >= text.length ? unexpected() : fail('Expected double-quoted property name');
          str();
          ws();
          if (text[i] !== ':') i >= text.length ? unexpected() : fail("Expected ':' after property name");
          i++;
        }
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === close) return void i++;
        if (i >= text.length) unexpected();
        fail(close === '}' ? "Expected ',' or '}' after property value" : "Expected ',' or ']' after array element");
      }
    }
    if (c === '"') return str();
    const lit = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
    if (!lit) unexpected();
    i += lit![0].length;
  };
  try {
    value(0);
    ws();
    if (i < text.length) unexpected();
  } catch (e) {
    if (typeof e === 'object' && e !== null && 'offset' in e) return e as { offset: number; message: string };
    throw e;
  }
  return undefined;
}

/**
 * Reads a config file: a JSON object whose keys are options of some
 * pinledger command (`known`). Anything else is a ConfigError naming the
 * file (and the line, for a syntax error).
 */
export function loadConfig(path: string, known: ReadonlySet<string>): Record<string, unknown> {
  const name = shown(path);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`config ${name}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`);
  }
  text = text.replace(/^\uFEFF/, '');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    const at = jsonErrorAt(text);
    const line = at ? text.slice(0, at.offset).split('\n').length : undefined;
    const message = at?.message ?? (e as Error).message.split('\n')[0]!;
    throw new ConfigError(`config ${name}${line === undefined ? '' : `:${line}`}: ${message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ConfigError(`config ${name}: expected a JSON object of options, such as {"watch": "/srv/drop", "db": "/srv/pinledger.db"}, not ${doc === null ? 'null' : Array.isArray(doc) ? 'an array' : typeof doc === 'boolean' ? String(doc) : `a ${typeof doc}`}`);
  }
  for (const k of Object.keys(doc)) {
    if (!known.has(k)) throw new ConfigError(`config ${name}: ${JSON.stringify(k)} is not an option of any pinledger command`);
  }
  return doc as Record<string, unknown>;
}

/** The config file looked for in the working directory. */
export const DEFAULT_CONFIG = 'pinledger.config.json';

/** The daemon's drop folder: `--watch X` / `--watch=X` on the command line (the last), else PINLEDGER_WATCH, else the default. */
export function watchOf(argv: readonly string[], env: NodeJS.ProcessEnv, fallback: string): string {
  let w: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === '--') break;
    if (t === '--watch' && i + 1 < argv.length) w = argv[++i]!;
    else if (t.startsWith('--watch=')) w = t.slice('--watch='.length);
  }
  return w ?? env.PINLEDGER_WATCH ?? fallback;
}

const real = (p: string): string => {
  try {
    return realpathSync(p);
  } catch {
    // Not there (yet): the path as given, resolved.
    return resolve(p);
  }
};

/** Is `inner` the folder `outer` or inside it? */
export function isWithin(inner: string, outer: string): boolean {
  const r = relative(outer, inner);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

export type ImplicitConfig = { use: string } | { ignored: string; reason: string } | undefined;

/**
 * Whether ./pinledger.config.json is read: undefined when there is none,
 * else the path to use or why it is ignored.
 */
export function implicitConfig(argv: readonly string[], env: NodeJS.ProcessEnv, defaultWatch: string, cwd = process.cwd()): ImplicitConfig {
  const path = resolve(cwd, DEFAULT_CONFIG);
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { ignored: DEFAULT_CONFIG, reason: `cannot be checked (${(e as NodeJS.ErrnoException).code})` };
  }
  const watch = real(resolve(cwd, watchOf(argv, env, defaultWatch)));
  if (isWithin(real(cwd), watch)) return { ignored: DEFAULT_CONFIG, reason: `the working directory is inside the drop folder ${watch}` };
  if (!st.isFile()) return { ignored: DEFAULT_CONFIG, reason: st.isSymbolicLink() ? 'a symlink, not a regular file' : 'not a regular file' };
  const euid = typeof process.geteuid === 'function' ? process.geteuid() : 0;
  if (st.uid !== 0 && st.uid !== euid) return { ignored: DEFAULT_CONFIG, reason: `owned by uid ${st.uid}, neither root nor uid ${euid}` };
  if ((st.mode & 0o022) !== 0) return { ignored: DEFAULT_CONFIG, reason: `writable by ${(st.mode & 0o020) !== 0 ? 'its group' : 'others'} (mode ${(st.mode & 0o777).toString(8)})` };
  return { use: DEFAULT_CONFIG };
}
