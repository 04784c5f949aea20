/**
 * Effective configuration: defaults, then a TOML file, then `UFDL_AGENT_*` environment variables,
 * then command-line flags — later wins. Every value remembers where it came from, and every error
 * names the key, the source and what was expected.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolveServerUrls } from '../../client/options.js';
import { ConfigError } from './errors.js';
import { ENV_ALIASES, KEYS, envName, keyId, type KeyDef } from './keys.js';
import { readLauncherIni } from './launcher-ini.js';

export type ConfigValue = string | number | boolean | number[] | string[] | null;
export type Source = 'default' | `file ${string}` | `env ${string}` | 'flag';

export interface EffectiveConfig {
  values: Record<string, ConfigValue>;
  sources: Record<string, Source>;
  file: string | undefined;
}

export { ConfigError };

export interface LoadOptions {
  /** A TOML file, or the reference launcher's INI (`*.conf`/`*.ini`). */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Flag values by key id (`agent.slots`), already named by the CLI. */
  flags?: Record<string, unknown>;
}

const BY_ID = new Map(KEYS.map((def) => [keyId(def), def]));

export function loadConfig(options: LoadOptions = {}): EffectiveConfig {
  const values: Record<string, ConfigValue> = {};
  const sources: Record<string, Source> = {};
  for (const def of KEYS) {
    values[keyId(def)] = def.default;
    sources[keyId(def)] = 'default';
  }
  const set = (id: string, raw: unknown, source: Source) => {
    const def = BY_ID.get(id);
    if (!def) throw new ConfigError(`Unknown configuration key '${id}' (from ${source}); known keys: ${[...BY_ID.keys()].join(', ')}`);
    values[id] = coerce(def, raw, source);
    sources[id] = source;
  };

  const env = options.env ?? process.env;
  const file = options.file ?? (env.UFDL_AGENT_CONFIG || undefined);
  if (file) {
    for (const [id, raw] of Object.entries(readConfigFile(file))) set(id, raw, `file ${file}`);
  }
  for (const def of KEYS) {
    const name = envName(def);
    if (env[name] !== undefined && env[name] !== '') set(keyId(def), env[name], `env ${name}`);
  }
  for (const [name, id] of Object.entries(ENV_ALIASES)) {
    const direct = envName(BY_ID.get(id)!);
    // An empty variable counts as unset, the direct one's too: it would otherwise hide the alias.
    if (env[name] !== undefined && env[name] !== '' && (env[direct] === undefined || env[direct] === '')) set(id, env[name], `env ${name}`);
  }
  for (const [id, raw] of Object.entries(options.flags ?? {})) {
    if (raw !== undefined) set(id, raw, 'flag');
  }
  return { values, sources, file };
}

/** Flatten a config file into `section.key` entries; unknown sections and keys are errors. */
function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read configuration file ${file}: ${(err as Error).message}`);
  }
  if (/\.(conf|ini)$/i.test(file)) return readLauncherIni(text, file);
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    // The parser's message quotes the lines around the fault, and the fault is often an unquoted
    // password: name the place only (the message reaches the terminal and the journal).
    const { message, line, column } = err as Error & { line?: unknown; column?: unknown };
    const what = message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    const where = typeof line === 'number' && typeof column === 'number' ? ` at line ${line}, column ${column}` : '';
    throw new ConfigError(`Configuration file ${file} is not valid TOML${where}: ${what}`);
  }
  const flat: Record<string, unknown> = {};
  for (const [section, body] of Object.entries(doc)) {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ConfigError(`In ${file}: '${section}' must be a [section] (one of [server], [agent], [logs], [serve])`);
    }
    for (const [name, value] of Object.entries(body)) flat[`${section}.${name}`] = value;
  }
  return flat;
}

/**
 * The TOML parser, loaded by the first configuration file (a command configured by the environment
 * alone never loads it); synchronously, as the whole loader is.
 */
function parseToml(text: string): unknown {
  const { parse } = createRequire(import.meta.url)('smol-toml') as typeof import('smol-toml');
  return parse(text);
}

function coerce(def: KeyDef, raw: unknown, source: Source): ConfigValue {
  const fail = (expected: string): never => {
    // A secret of the wrong type is still the secret: say what kind of value it was, not the value.
    const got = def.secret ? `a ${Array.isArray(raw) ? 'list' : typeof raw === 'object' ? 'table' : typeof raw}` : JSON.stringify(raw);
    throw new ConfigError(`Configuration key '${keyId(def)}' from ${source}: expected ${expected}, got ${got}`);
  };
  if (raw === null) return null;
  switch (def.type) {
    case 'string':
      if (typeof raw !== 'string') return fail('a string');
      return def.choices && !def.choices.includes(raw) ? fail(`one of ${def.choices.map((c) => `'${c}'`).join(', ')}`) : raw;
    case 'int': {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      return typeof n === 'number' && Number.isInteger(n) ? n : fail('an integer');
    }
    case 'number': {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (def.positive) return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : fail('a positive number');
      return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : fail('a non-negative number');
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string') {
        const v = raw.trim().toLowerCase();
        if (['1', 'yes', 'true', 'on'].includes(v)) return true;
        if (['0', 'no', 'false', 'off'].includes(v)) return false;
      }
      return fail('true or false');
    }
    case 'seconds-list': {
      const list = typeof raw === 'string' ? raw.split(',').map((s) => Number(s.trim())) : raw;
      // Zero would make a loop of its own: an empty poll, or a failed call, tried again at once for good.
      if (Array.isArray(list) && list.length > 0 && list.every((n) => typeof n === 'number' && Number.isFinite(n) && n > 0)) {
        return list as number[];
      }
      return fail('a non-empty list of positive seconds, e.g. [10, 30] or "10,30"');
    }
    case 'url-list':
      return urlList(def, raw, source);
  }
}

/**
 * One URL or several: a TOML list of strings, or one string with the URLs separated by commas. Each must be an http(s) URL without credentials, none twice; the error names the one at fault.
 */
function urlList(def: KeyDef, raw: unknown, source: Source): string[] {
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '') : raw;
  const expected = 'an http(s) URL, or several as a list or comma-separated, e.g. "http://a:8000,http://b:8000"';
  if (!Array.isArray(list) || list.length === 0 || list.some((u) => typeof u !== 'string')) {
    throw new ConfigError(`Configuration key '${keyId(def)}' from ${source}: expected ${expected}, got ${JSON.stringify(raw)}`);
  }
  try {
    resolveServerUrls(list as string[]);
  } catch (err) {
    const which = (err as Error).message
      .replace(/^Client option 'serverUrl' lists/, 'the list names')
      .replace(/^Client option 'serverUrl(?:\[(\d+)\])?'/, (_m, i: string | undefined) => (i === undefined ? 'the URL' : `URL ${Number(i) + 1}`));
    throw new ConfigError(`Configuration key '${keyId(def)}' from ${source}: ${which} (expected ${expected})`);
  }
  return (list as string[]).map((u) => u.replace(/\/+$/, ''));
}

/** Typed reads of an effective configuration (see {@link readConfig}). */
export interface ConfigReader {
  string(id: string): string;
  /** A string key whose null or empty value means "not set". */
  optionalString(id: string): string | undefined;
  number(id: string): number;
  /** A number key whose null means "not set". */
  optionalNumber(id: string): number | undefined;
  bool(id: string): boolean;
  list(id: string): number[];
  /** A list of URLs (`url-list`), without trailing slashes. */
  urls(id: string): string[];
  /** A key in seconds, as the milliseconds an option takes. */
  milliseconds(id: string): number;
}

/**
 * Typed reads of `config`. The loader has coerced every value to its key's type, so a key read as
 * another type, or a key that does not exist, is a bug of the caller, and the error says which.
 */
export function readConfig(config: EffectiveConfig): ConfigReader {
  const value = (id: string, types: readonly KeyDef['type'][]): ConfigValue => {
    const def = BY_ID.get(id);
    if (!def) throw new Error(`configuration key '${id}' does not exist`);
    if (!types.includes(def.type)) throw new Error(`configuration key '${id}' is a ${def.type}, read as ${types.join(' or ')}`);
    return config.values[id] ?? null;
  };
  const required = <T>(id: string, got: T | null): T => {
    if (got === null) throw new Error(`configuration key '${id}' has no value`);
    return got;
  };
  const optionalString = (id: string) => (value(id, ['string']) as string | null) || undefined;
  const optionalNumber = (id: string) => (value(id, ['int', 'number']) as number | null) ?? undefined;
  return {
    string: (id) => required(id, value(id, ['string']) as string | null),
    optionalString,
    number: (id) => required(id, optionalNumber(id) ?? null),
    optionalNumber,
    bool: (id) => required(id, value(id, ['bool']) as boolean | null),
    list: (id) => [...required(id, value(id, ['seconds-list']) as number[] | null)],
    urls: (id) => [...required(id, value(id, ['url-list']) as string[] | null)],
    milliseconds: (id) => Math.round(required(id, optionalNumber(id) ?? null) * 1000),
  };
}

/**
 * The secret a password file holds: its first line, without surrounding white space (an editor's
 * trailing space or `\r` is never part of a password). One reading for `server.password_file` and
 * `--password-file`, so the same file gives the same password either way.
 */
export function secretFromFile(file: string): string {
  return readFileSync(file, 'utf8').split('\n')[0]!.trim();
}

/** Read a secret: the direct value, else the first line of `<key>_file`. */
export function secretValue(config: EffectiveConfig, id: string): string | undefined {
  const direct = config.values[id];
  if (typeof direct === 'string' && direct !== '') return direct;
  const fileKey = `${id}_file`;
  const file = config.values[fileKey];
  if (typeof file === 'string' && file !== '') {
    try {
      return secretFromFile(file);
    } catch (err) {
      throw new ConfigError(`Configuration key '${fileKey}' from ${config.sources[fileKey]}: cannot read ${file}: ${(err as Error).message}`);
    }
  }
  return undefined;
}

/** The effective configuration as `ufdl-agent config` prints it, secrets masked. */
export function describeConfig(config: EffectiveConfig): Array<{ key: string; value: string; source: Source }> {
  return KEYS.map((def) => {
    const id = keyId(def);
    const value = config.values[id];
    // One server address is shown as it always was: a string, not a list of one.
    const plain = def.type === 'url-list' && Array.isArray(value) && value.length === 1 ? value[0] : value;
    const shown = def.secret ? (value === null || value === '' ? '(unset)' : '(set)') : JSON.stringify(plain);
    return { key: id, value: shown, source: config.sources[id]! };
  });
}
