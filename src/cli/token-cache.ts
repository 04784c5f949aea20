/**
 * The CLI's token cache: the access and refresh tokens a command obtained, kept for the next command
 * so that it skips the login (the server hashes the password slowly on purpose). One file per server
 * and user, `<cache dir>/ufdl-agent/tokens/<hash of server and user>.json`, where the cache dir is
 * `$XDG_CACHE_HOME`, else `~/.cache`; the directory is made 0700 and the file 0600, written whole
 * and renamed into place, so two commands at once never leave half a file.
 *
 * A file that is not ours to trust is no cache: not a regular file, not owned by this user, readable
 * or writable by others, unparsable, or made for another server or user — the command then logs in
 * and writes a good one. The tokens are never printed. `ufdl-agent logout` removes the file
 * (docs/OPERATIONS.md, "The CLI's token cache").
 */
import { closeSync, fstatSync, openSync, readFileSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CachedToken, TokenCache } from '../client/options.js';
import { READ_WITHOUT_BLOCKING, cliCacheDir, fileKey, isOwnPrivateFile } from './cache-dir.js';
import { CliError } from './cli-error.js';
import { EXIT } from './exit-codes.js';
import { makeDirsSync } from '../make-dirs.js';

const VERSION = 1;

/** `$XDG_CACHE_HOME/ufdl-agent/tokens`, else `~/.cache/ufdl-agent/tokens`. */
export function tokenCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cliCacheDir(env), 'tokens');
}

interface CacheFile {
  version: number;
  servers: string[];
  username: string;
  access: CachedToken;
  refresh: CachedToken;
}

export class TokenCacheFile implements TokenCache {
  /** The file of this server (its addresses, in order) and user. */
  readonly path: string;
  readonly #servers: readonly string[];
  readonly #username: string;

  constructor(servers: readonly string[], username: string, dir = tokenCacheDir()) {
    this.#servers = servers;
    this.#username = username;
    this.path = join(dir, `${fileKey(JSON.stringify([servers, username]))}.json`);
  }

  load(): { access: CachedToken; refresh: CachedToken } | undefined {
    let text: string;
    let fd: number;
    try {
      fd = openSync(this.path, READ_WITHOUT_BLOCKING);
    } catch {
      return undefined;
    }
    try {
      if (!isOwnPrivateFile(fstatSync(fd))) return undefined;
      text = readFileSync(fd, 'utf8');
    } catch {
      return undefined;
    } finally {
      closeSync(fd);
    }
    let parsed: Partial<CacheFile>;
    try {
      parsed = JSON.parse(text) as Partial<CacheFile>;
    } catch {
      return undefined;
    }
    if (parsed === null || typeof parsed !== 'object' || parsed.version !== VERSION) return undefined;
    if (JSON.stringify(parsed.servers) !== JSON.stringify(this.#servers) || parsed.username !== this.#username) return undefined;
    if (!isToken(parsed.access) || !isToken(parsed.refresh)) return undefined;
    return { access: parsed.access, refresh: parsed.refresh };
  }

  save(tokens: { access: CachedToken; refresh: CachedToken }): void {
    const dir = join(this.path, '..');
    makeDirsSync(dir, 0o700);
    const body: CacheFile = { version: VERSION, servers: [...this.#servers], username: this.#username, ...tokens };
    const temp = `${this.path}.${process.pid}.${Date.now()}.tmp`;
    try {
      // 'wx' with the mode: the file is never readable by others, not even for a moment.
      writeFileSync(temp, `${JSON.stringify(body)}\n`, { mode: 0o600, flag: 'wx' });
      renameSync(temp, this.path);
    } catch (err) {
      rmSync(temp, { force: true });
      throw err;
    }
  }

  drop(): void {
    try {
      unlinkSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw cannotRemove(this.path, err);
    }
  }
}

/** Remove every cached token file of this user; returns how many there were. */
export function dropAllTokens(dir = tokenCacheDir()): number {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.json') || name.endsWith('.tmp'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  // Every file that can go goes: one that cannot must not keep the others' tokens alive.
  const failures: CliError[] = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      rmSync(path, { force: true });
    } catch (err) {
      failures.push(cannotRemove(path, err));
    }
  }
  if (failures.length > 0) {
    const more = failures.length > 1 ? ` (and ${failures.length - 1} more: ${failures.slice(1).map((f) => f.message.replace(/^could not remove the cached token file /, '')).join('; ')})` : '';
    throw new CliError(failures[0]!.exitCode, `${failures[0]!.message}${more}`);
  }
  return names.filter((name) => name.endsWith('.json')).length;
}

/** A token file that stays (a directory in its place, no permission): the user must see which. */
function cannotRemove(path: string, err: unknown): CliError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'EISDIR' || code === 'ERR_FS_EISDIR' ? 'it is a directory' : err instanceof Error ? err.message : String(err);
  return new CliError(code === 'EACCES' || code === 'EPERM' ? EXIT.NOPERM : EXIT.FAILURE, `could not remove the cached token file ${path}: ${why}`);
}

function isToken(value: unknown): value is CachedToken {
  const v = value as Partial<CachedToken> | null;
  return v !== null && typeof v === 'object' && typeof v.token === 'string' && v.token !== '' && typeof v.obtainedAt === 'number' && Number.isFinite(v.obtainedAt);
}
