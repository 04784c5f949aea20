/**
 * The short commands' code cache (src/cli/cached-bundle.ts): a command writes it once it has run and
 * the next run of that command uses it; whatever is wrong with the file — corrupt, short, made for
 * another node, refused by V8 for other flags, readable by others, unwritable — the command runs the
 * same, says nothing about it (unless UFDL_AGENT_DEBUG), and a good cache is written again.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/build.js';
import { tempDir } from '../helpers/temp-dir.js';
import { MAIN, ROOT, cli, serverEnv, serverWithTemplates } from './commands-support.js';

beforeAll(buildOnce, 240_000);

const run = promisify(execFile);

/** `ufdl-agent config --json` (no server needed) with its own cache directory, what it printed and what it said about the cache. */
async function config(cacheHome: string, { nodeArgs = [] as string[], env = {} as Record<string, string> } = {}) {
  const { stdout, stderr } = await run(process.execPath, [...nodeArgs, MAIN, 'config', '--json'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, XDG_CACHE_HOME: cacheHome, UFDL_AGENT_DEBUG: '1', ...env },
    timeout: 30_000,
  });
  const said = [...stderr.matchAll(/^ufdl-agent: code cache \S+: (.+)$/gm)].map((m) => m[1]);
  const others = stderr.split('\n').filter((line) => line !== '' && !line.startsWith('ufdl-agent: code cache '));
  expect(others, 'nothing else on stderr').toEqual([]);
  return { config: JSON.parse(stdout) as unknown, said };
}

function cacheFileOf(cacheHome: string): string {
  const dir = join(cacheHome, 'ufdl-agent', 'code');
  const files = readdirSync(dir);
  expect(files).toHaveLength(1);
  expect(files[0]).toMatch(/^[0-9a-f]{16}-config\.v8$/);
  return join(dir, files[0]!);
}

/** The header line and the two copies of the code. */
function parts(file: string) {
  const bytes = readFileSync(file);
  const end = bytes.indexOf(10);
  const header = bytes.toString('utf8', 0, end);
  const length = Number(header.slice(header.lastIndexOf(' ') + 1));
  return { bytes, header, start: end + 1, length };
}

describe('the code cache of the short commands', () => {
  it('is written by the first run of a command, private to the user, and used by the next', async () => {
    const cacheHome = await tempDir('ufdl-code-cache-');
    const first = await config(cacheHome);
    expect(first.said).toEqual(['absent', 'written']);
    const file = cacheFileOf(cacheHome);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(cacheHome, 'ufdl-agent', 'code')).mode & 0o777).toBe(0o700);
    const { bytes, header, start, length } = parts(file);
    expect(header).toContain(JSON.stringify(process.version));
    expect(header).toContain(join(ROOT, 'dist', 'cli', 'short-commands.cjs'));
    expect(bytes.length).toBe(start + 2 * length);
    expect(bytes.subarray(start, start + length).equals(bytes.subarray(start + length))).toBe(true);

    const second = await config(cacheHome);
    expect(second.said).toEqual(['used']);
    expect(second.config).toEqual(first.config);
    // Not written again: the same file, byte for byte.
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });

  it.each([
    ['a byte flipped in one copy', 'corrupt', (b: Buffer, start: number, length: number) => void (b[start + Math.floor(length / 2)]! ^= 0x5a)],
    ['cut short', 'corrupt', (b: Buffer, start: number, length: number) => b.subarray(0, start + length + 100)],
    ['no header', 'corrupt', (b: Buffer, start: number) => b.subarray(start)],
    ['made by another node', 'stale', (b: Buffer) => Buffer.from(b.toString('latin1').replace(JSON.stringify(process.version), '"v0.0.1"'), 'latin1')],
  ])('is not used when %s: the command runs the same and a good cache is written again', async (_what, state, spoil) => {
    const cacheHome = await tempDir('ufdl-code-cache-');
    const good = await config(cacheHome);
    const file = cacheFileOf(cacheHome);
    const { bytes, start, length } = parts(file);
    const spoilt = Buffer.from(bytes);
    writeFileSync(file, spoil(spoilt, start, length) ?? spoilt);

    const after = await config(cacheHome);
    expect(after.said).toEqual([state, 'written']);
    expect(after.config).toEqual(good.config);
    expect((await config(cacheHome)).said).toEqual(['used']);
  });

  it('is refused by V8 when node runs with other V8 flags, and the command runs the same', async () => {
    const cacheHome = await tempDir('ufdl-code-cache-');
    const good = await config(cacheHome);
    const other = await config(cacheHome, { nodeArgs: ['--stack-size=900'] });
    expect(other.said).toEqual(['rejected', 'written']);
    expect(other.config).toEqual(good.config);
    expect((await config(cacheHome, { nodeArgs: ['--stack-size=900'] })).said).toEqual(['used']);
  });

  it('is not used when others may read or write it', async () => {
    const cacheHome = await tempDir('ufdl-code-cache-');
    await config(cacheHome);
    const file = cacheFileOf(cacheHome);
    chmodSync(file, 0o622);
    expect((await config(cacheHome)).said).toEqual(['untrusted', 'written']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('is not waited on when a FIFO takes its place', async () => {
    const cacheHome = await tempDir('ufdl-code-cache-');
    await config(cacheHome);
    const file = cacheFileOf(cacheHome);
    rmSync(file);
    execFileSync('mkfifo', ['-m', '600', file]);
    expect((await config(cacheHome)).said).toEqual(['untrusted', 'written']);
    expect(statSync(file).isFile()).toBe(true);
  });

  it('cannot be written where the cache directory cannot be made: the command runs without one', async () => {
    const home = await tempDir('ufdl-code-cache-');
    const notADir = join(home, 'file');
    writeFileSync(notADir, '');
    const runs = [await config(join(notADir, 'cache')), await config(join(notADir, 'cache'))];
    for (const { said } of runs) expect(said).toEqual(['unreadable', expect.stringMatching(/^not written: cannot create the directory .*: a part of the path is a file, not a directory$/)]);
    expect(runs[1]!.config).toEqual(runs[0]!.config);
    // Under /proc, where Node 20's recursive mkdir spun for ever: the command ran to no end.
    const proc = await config('/proc/ufdl-code-cache');
    expect(proc.said).toEqual(['absent', expect.stringMatching(/^not written: cannot create the directory \/proc\/ufdl-code-cache\/.*this file system does not allow a directory there/)]);
    expect(proc.config).toEqual(runs[0]!.config);
  });

  it('is neither read nor written with UFDL_AGENT_CODE_CACHE=off', async () => {
    const cacheHome = await tempDir('ufdl-code-cache-');
    expect((await config(cacheHome, { env: { UFDL_AGENT_CODE_CACHE: 'off' } })).said).toEqual(['off']);
    expect(existsSync(join(cacheHome, 'ufdl-agent', 'code'))).toBe(false);
  });

  it('serves `jobs` against a real server, corrupt or not', async () => {
    const server = await serverWithTemplates();
    const cacheHome = await tempDir('ufdl-code-cache-');
    const env = serverEnv(server, { XDG_CACHE_HOME: cacheHome });
    const submitted = await cli(['submit', 'shell-hello'], { env });
    expect(submitted.code, submitted.stderr).toBe(0);
    const pk = Number(submitted.stdout.trim());
    const listed = async () => {
      const result = await cli(['jobs', '--json'], { env });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toBe('');
      return (JSON.parse(result.stdout) as { pk: number }[]).map((job) => job.pk);
    };
    expect(await listed()).toEqual([pk]);
    const dir = join(cacheHome, 'ufdl-agent', 'code');
    const jobsCache = join(dir, readdirSync(dir).find((name) => name.endsWith('-jobs.v8'))!);
    const bytes = readFileSync(jobsCache);
    for (let i = bytes.indexOf(10) + 1000; i < bytes.length; i += 997) bytes[i]! ^= 0x5a;
    writeFileSync(jobsCache, bytes);
    expect(await listed()).toEqual([pk]);
    expect(await listed()).toEqual([pk]);
  });
});
