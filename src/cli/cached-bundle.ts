/**
 * Run a CommonJS bundle of the CLI with a V8 code cache. Node 20 keeps the compiled code of neither
 * ES nor CommonJS modules between runs (`module.enableCompileCache` came with Node 22), so a short
 * command spent a third of its start parsing and compiling the same JavaScript each time. Here the
 * bundle is compiled as a script with the code V8 compiled for it the last time the same command ran:
 * the file `<cache dir>/ufdl-agent/code/<hash of the bundle's path>-<command>.v8` (cache-dir.ts),
 * written once the command has run, so that it holds the functions that command needed.
 *
 * The cache is only ever a shortcut: whatever is wrong with it, the bundle is compiled from its source
 * and the command runs the same, and a cache that was not used is written anew.
 * - Made for another build or install of the bundle (its path, size and modification time are in the
 *   header), another node or architecture: not used. V8 itself refuses code of another V8 version or
 *   other flags (`cachedDataRejected`).
 * - Corrupt: V8 in Node 20 does not check a code cache's checksum (a flipped byte crashes the process
 *   in its deserializer), and node has no checksum short of loading crypto or zlib, which costs a
 *   third of what the cache saves. So the file holds the code twice and the copies are compared
 *   (one memcmp) before V8 sees them; a short file fails the length in the header. Files are written
 *   whole and renamed into place, so two commands at once never leave half of one.
 * - Not this user's, or readable or writable by others: not used (it could make this user's command
 *   run code of someone else's choosing).
 * - Unwritable (a read-only home, an image): the command runs without one.
 * `UFDL_AGENT_CODE_CACHE=off` neither reads nor writes it; `UFDL_AGENT_DEBUG` prints what became of it.
 */
import { closeSync, fstatSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Script } from 'node:vm';
import { makeDirsSync } from '../make-dirs.js';
import { READ_WITHOUT_BLOCKING, cliCacheDir, fileKey, isOwnPrivateFile } from './cache-dir.js';

const FORMAT = 'ufdl-agent code cache 1';

/** What became of the cache: used, or why not. */
export type CacheState = 'used' | 'off' | 'absent' | 'unreadable' | 'untrusted' | 'stale' | 'corrupt' | 'rejected';

export interface LoadedBundle {
  /** The bundle's `module.exports`. */
  exports: Record<string, unknown>;
  cache: CacheState;
  /** Write the cache if it was not used. Call it once the command has run; it never throws. */
  saveCache(): void;
}

/**
 * Compile and run `file` (a CommonJS bundle) with the code cache of `command` (a name safe in a file
 * name); undefined when there is no such file.
 */
export function loadBundle(file: string, command: string, env: NodeJS.ProcessEnv = process.env): LoadedBundle | undefined {
  const bundle = readBundle(file);
  if (bundle === undefined) return undefined;
  const off = env.UFDL_AGENT_CODE_CACHE === 'off';
  const cachePath = join(cliCacheDir(env), 'code', `${fileKey(file)}-${command}.v8`);
  // Everything the cached code depends on besides V8, which checks its own version and flags.
  const header = `${FORMAT} ${JSON.stringify([process.version, process.arch, file, bundle.size, bundle.mtimeMs])} `;
  const cached = off ? { state: 'off' as const } : readCache(cachePath, header);

  // A function expression, as node wraps a CommonJS module; `import.meta.url` is defined to its last
  // parameter by the build (scripts/build-cli.mjs).
  const source = `(function (exports, require, module, __filename, __dirname, __ufdlImportMetaUrl) {${bundle.source}\n})`;
  const script = new Script(source, {
    filename: file,
    ...(cached.data === undefined ? {} : { cachedData: cached.data }),
  });
  const cache: CacheState = cached.data !== undefined && script.cachedDataRejected === true ? 'rejected' : cached.state;
  debug(env, cachePath, cache);

  const module = { exports: {} as Record<string, unknown> };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper(module.exports, createRequire(file), module, file, dirname(file), pathToFileURL(file).href);

  return {
    exports: module.exports,
    cache,
    saveCache() {
      if (cache === 'used' || cache === 'off') return;
      try {
        const code = script.createCachedData();
        makeDirsSync(dirname(cachePath), 0o700);
        const temp = `${cachePath}.${process.pid}.${Date.now()}.tmp`;
        try {
          writeFileSync(temp, Buffer.concat([Buffer.from(`${header}${code.length}\n`), code, code]), { mode: 0o600, flag: 'wx' });
          renameSync(temp, cachePath);
        } catch (err) {
          rmSync(temp, { force: true });
          throw err;
        }
        debug(env, cachePath, 'written');
      } catch (err) {
        debug(env, cachePath, `not written: ${(err as Error).message}`);
      }
    },
  };
}

function readBundle(file: string): { source: string; size: number; mtimeMs: number } | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const { size, mtimeMs } = fstatSync(fd);
    return { source: readFileSync(fd, 'utf8'), size, mtimeMs };
  } finally {
    closeSync(fd);
  }
}

/** The cached code, if the file at `path` holds two equal copies of it made for `header`. */
function readCache(path: string, header: string): { state: CacheState; data?: Buffer } {
  let fd: number;
  try {
    fd = openSync(path, READ_WITHOUT_BLOCKING);
  } catch (err) {
    return { state: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'unreadable' };
  }
  let file: Buffer;
  try {
    if (!isOwnPrivateFile(fstatSync(fd))) return { state: 'untrusted' };
    file = readFileSync(fd);
  } catch {
    return { state: 'unreadable' };
  } finally {
    closeSync(fd);
  }
  const lineEnd = file.indexOf(10);
  const line = file.toString('utf8', 0, Math.max(lineEnd, 0));
  if (!line.startsWith(header)) return { state: line.startsWith(FORMAT) ? 'stale' : 'corrupt' };
  const length = Number(line.slice(header.length));
  const start = lineEnd + 1;
  if (!Number.isSafeInteger(length) || length <= 0 || file.length !== start + 2 * length) return { state: 'corrupt' };
  const data = file.subarray(start, start + length);
  if (!data.equals(file.subarray(start + length))) return { state: 'corrupt' };
  return { state: 'used', data };
}

function debug(env: NodeJS.ProcessEnv, path: string, what: string): void {
  if (env.UFDL_AGENT_DEBUG) process.stderr.write(`ufdl-agent: code cache ${path}: ${what}\n`);
}
