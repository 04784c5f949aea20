/**
 * The CLI's token cache, through the built `ufdl-agent` against a real embedded server: a command
 * keeps its tokens in a file only the user can read, the next command uses them instead of logging
 * in, an expired or refused token is refreshed or re-obtained once and the command succeeds, another
 * server or user does not reuse them, `logout` removes them, and a file that cannot be trusted is
 * ignored. Logins and refreshes are counted by the server's own request metrics.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/build.js';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../helpers/server.js';
import { cli, expectOneLineError, serverEnv } from './commands-support.js';
import { tempDir } from '../helpers/temp-dir.js';

beforeAll(buildOnce, 240_000);

interface CacheFile {
  servers: string[];
  username: string;
  access: { token: string; obtainedAt: number };
  refresh: { token: string; obtainedAt: number };
}

/** A cache directory of its own: `XDG_CACHE_HOME` for the commands, and where their files are. */
async function cacheHome(): Promise<{ home: string; dir: string }> {
  const home = await tempDir('ufdl-token-cache-');
  return { home, dir: join(home, 'ufdl-agent', 'tokens') };
}

async function cacheFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => name.endsWith('.json')).map((name) => join(dir, name));
  } catch {
    return [];
  }
}

async function onlyFile(dir: string): Promise<string> {
  const files = await cacheFiles(dir);
  expect(files).toHaveLength(1);
  return files[0]!;
}

/** Successful logins and refreshes the server has answered so far. */
async function authCounts(server: TestServer): Promise<{ obtain: number; refresh: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const count = (route: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`ufdl_server_http_requests_total{method="POST",route="${route}",status="200"}`));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  };
  return { obtain: count('/v1/auth/obtain'), refresh: count('/v1/auth/refresh') };
}

/** A JWT-shaped token the client can read the expiry of, but the server never signed. */
function forgedToken(expSeconds: number): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ token_type: 'access', exp: expSeconds, iat: expSeconds - 300, user_id: 1 })}.${'x'.repeat(43)}`;
}

describe('the CLI token cache', () => {
  it('keeps the tokens in a 0600 file (0700 directory) after the first command; the next one does not log in', async () => {
    const server = await startTestServer();
    const { home, dir } = await cacheHome();
    const env = serverEnv(server, { XDG_CACHE_HOME: home });
    const before = await authCounts(server);

    const first = await cli(['jobs'], { env });
    expect(first.code, first.stderr).toBe(0);
    const file = await onlyFile(dir);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const cached = JSON.parse(await readFile(file, 'utf8')) as CacheFile;
    expect(cached.username).toBe('admin');
    expect(cached.servers).toEqual([`${server.url}/`]);
    expect(await readFile(file, 'utf8')).not.toContain(ADMIN_PASSWORD);
    // Never printed.
    expect(first.stdout + first.stderr).not.toContain(cached.access.token);

    for (let i = 0; i < 2; i++) expect((await cli(['jobs'], { env })).code).toBe(0);
    const after = await authCounts(server);
    expect(after.obtain - before.obtain).toBe(1);
    expect(after.refresh - before.refresh).toBe(0);

    // --no-token-cache logs in, and leaves the file as it was.
    expect((await cli(['jobs', '--no-token-cache'], { env })).code).toBe(0);
    expect((await authCounts(server)).obtain - before.obtain).toBe(2);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(cached);
    // So does server.token_cache = false.
    expect((await cli(['jobs'], { env: { ...env, UFDL_AGENT_SERVER_TOKEN_CACHE: 'false' } })).code).toBe(0);
    expect((await authCounts(server)).obtain - before.obtain).toBe(3);
  });

  it('refreshes an expired access token once, and logs in once when the server refuses both tokens; the command succeeds', async () => {
    const server = await startTestServer();
    const { home, dir } = await cacheHome();
    const env = serverEnv(server, { XDG_CACHE_HOME: home });
    expect((await cli(['jobs'], { env })).code).toBe(0);
    const file = await onlyFile(dir);
    const good = JSON.parse(await readFile(file, 'utf8')) as CacheFile;

    // Expired (by its own claims): refreshed with the cached refresh token, no login.
    let counts = await authCounts(server);
    await writeFile(file, JSON.stringify({ ...good, version: 1, access: { token: forgedToken(Math.floor(Date.now() / 1000) - 60), obtainedAt: Date.now() - 360_000 } }), { mode: 0o600 });
    let result = await cli(['jobs'], { env });
    expect(result.code, result.stderr).toBe(0);
    let now = await authCounts(server);
    expect([now.refresh - counts.refresh, now.obtain - counts.obtain]).toEqual([1, 0]);
    const refreshed = JSON.parse(await readFile(file, 'utf8')) as CacheFile;
    expect(refreshed.access.token).not.toBe(good.access.token);
    expect(refreshed.refresh.token).toBe(good.refresh.token);

    // Refused although not expired (a token the server never signed): refreshed after the 401.
    counts = now;
    await writeFile(file, JSON.stringify({ ...refreshed, version: 1, access: { token: forgedToken(Math.floor(Date.now() / 1000) + 3600), obtainedAt: Date.now() } }), { mode: 0o600 });
    result = await cli(['jobs'], { env });
    expect(result.code, result.stderr).toBe(0);
    now = await authCounts(server);
    expect([now.refresh - counts.refresh, now.obtain - counts.obtain]).toEqual([1, 0]);

    // Both refused: one login with the password, and the new tokens are kept.
    counts = now;
    const forged = forgedToken(Math.floor(Date.now() / 1000) + 3600);
    await writeFile(file, JSON.stringify({ ...refreshed, version: 1, access: { token: forged, obtainedAt: Date.now() }, refresh: { token: forged, obtainedAt: Date.now() } }), { mode: 0o600 });
    result = await cli(['jobs', '--json'], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([]);
    now = await authCounts(server);
    expect(now.obtain - counts.obtain).toBe(1);
    const renewed = JSON.parse(await readFile(file, 'utf8')) as CacheFile;
    expect(renewed.access.token).not.toBe(forged);
    expect(renewed.refresh.token).not.toBe(forged);
  });

  it('uses the cached tokens even after the configured password went wrong, until they are refused; a refused login removes them', async () => {
    const server = await startTestServer();
    const { home, dir } = await cacheHome();
    const env = serverEnv(server, { XDG_CACHE_HOME: home });
    expect((await cli(['jobs'], { env })).code).toBe(0);
    const wrong = { ...env, UFDL_AGENT_SERVER_PASSWORD: 'not-the-password' };
    expect((await cli(['jobs'], { env: wrong })).code).toBe(0);
    // Without the cache the wrong password is what it is.
    expectOneLineError(await cli(['jobs', '--no-token-cache'], { env: wrong }), 77, /login refused for user 'admin'/);

    // Once the tokens are refused, the login with the wrong password fails and the file is gone.
    const file = await onlyFile(dir);
    const forged = forgedToken(Math.floor(Date.now() / 1000) + 3600);
    const cached = JSON.parse(await readFile(file, 'utf8')) as CacheFile;
    await writeFile(file, JSON.stringify({ ...cached, version: 1, access: { token: forged, obtainedAt: Date.now() }, refresh: { token: forged, obtainedAt: Date.now() } }), { mode: 0o600 });
    expectOneLineError(await cli(['jobs'], { env: wrong }), 77, /login refused for user 'admin'/);
    expect(await cacheFiles(dir)).toEqual([]);
  });

  it('does not reuse the tokens of another server or another user', async () => {
    const one = await startTestServer();
    const two = await startTestServer();
    const { home, dir } = await cacheHome();
    expect((await cli(['jobs'], { env: serverEnv(one, { XDG_CACHE_HOME: home }) })).code).toBe(0);
    const oneBefore = await authCounts(one);

    // Another server: its own login, its own file.
    const twoBefore = await authCounts(two);
    expect((await cli(['jobs'], { env: serverEnv(two, { XDG_CACHE_HOME: home }) })).code).toBe(0);
    expect((await authCounts(two)).obtain - twoBefore.obtain).toBe(1);
    expect(await cacheFiles(dir)).toHaveLength(2);

    // Another user on the first server: logs in as that user (and is refused with a wrong password).
    const users = await cli(['users', 'add', 'carol'], { env: serverEnv(one, { XDG_CACHE_HOME: home, UFDL_AGENT_NEW_PASSWORD: 'carol-password-1' }) });
    expect(users.code, users.stderr).toBe(0);
    const asCarol = serverEnv(one, { XDG_CACHE_HOME: home, UFDL_AGENT_SERVER_USERNAME: 'carol', UFDL_AGENT_SERVER_PASSWORD: 'carol-password-1' });
    expect((await cli(['jobs'], { env: asCarol })).code).toBe(0);
    expect((await authCounts(one)).obtain - oneBefore.obtain).toBe(1);
    expect(await cacheFiles(dir)).toHaveLength(3);
    expectOneLineError(await cli(['jobs'], { env: { ...asCarol, UFDL_AGENT_SERVER_USERNAME: 'dave', UFDL_AGENT_SERVER_PASSWORD: 'x' } }), 77, /login refused for user 'dave'/);

    // A file renamed to another server's and user's name is not theirs.
    const files = await cacheFiles(dir);
    const contents = await Promise.all(files.map(async (f) => JSON.parse(await readFile(f, 'utf8')) as CacheFile));
    const carolFile = files[contents.findIndex((c) => c.username === 'carol')]!;
    const twoFile = files[contents.findIndex((c) => c.servers[0] === `${two.url}/`)]!;
    await writeFile(twoFile, await readFile(carolFile), { mode: 0o600 });
    const again = await authCounts(two);
    expect((await cli(['jobs'], { env: serverEnv(two, { XDG_CACHE_HOME: home }) })).code).toBe(0);
    expect((await authCounts(two)).obtain - again.obtain).toBe(1);
  });

  it('logout removes the file of the server and user; --all removes every one', async () => {
    const one = await startTestServer();
    const two = await startTestServer();
    const { home, dir } = await cacheHome();
    expect((await cli(['jobs'], { env: serverEnv(one, { XDG_CACHE_HOME: home }) })).code).toBe(0);
    expect((await cli(['jobs'], { env: serverEnv(two, { XDG_CACHE_HOME: home }) })).code).toBe(0);
    expect(await cacheFiles(dir)).toHaveLength(2);

    // No password needed to log out.
    const out = await cli(['logout', '--server', one.url], { env: { XDG_CACHE_HOME: home } });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe(`removed the cached tokens of user 'admin' at ${one.url}\n`);
    const left = await cacheFiles(dir);
    expect(left).toHaveLength(1);
    expect((JSON.parse(await readFile(left[0]!, 'utf8')) as CacheFile).servers).toEqual([`${two.url}/`]);
    expect((await cli(['logout', '--server', one.url], { env: { XDG_CACHE_HOME: home } })).stdout).toBe(`no cached tokens for user 'admin' at ${one.url}\n`);

    // The next command logs in again.
    const before = await authCounts(one);
    expect((await cli(['jobs'], { env: serverEnv(one, { XDG_CACHE_HOME: home }) })).code).toBe(0);
    expect((await authCounts(one)).obtain - before.obtain).toBe(1);

    const all = await cli(['logout', '--all'], { env: { XDG_CACHE_HOME: home } });
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/^removed 2 cached token files /);
    expect(await cacheFiles(dir)).toEqual([]);
  });

  it('logout says which cached token it could not remove (a directory in its place), with status 1 and no stack trace', async () => {
    const server = await startTestServer();
    const { home, dir } = await cacheHome();
    expect((await cli(['jobs'], { env: serverEnv(server, { XDG_CACHE_HOME: home }) })).code).toBe(0);
    const file = await onlyFile(dir);
    await rm(file);
    await mkdir(join(file, 'inside'), { recursive: true });

    const one = await cli(['logout', '--server', server.url], { env: { XDG_CACHE_HOME: home } });
    expectOneLineError(one, 1, new RegExp(`^ufdl-agent: could not remove the cached token file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    // With --all, every other file still goes.
    const other = await startTestServer();
    expect((await cli(['jobs'], { env: serverEnv(other, { XDG_CACHE_HOME: home }) })).code).toBe(0);
    expect(await cacheFiles(dir)).toHaveLength(2);
    const all = await cli(['logout', '--all'], { env: { XDG_CACHE_HOME: home } });
    expectOneLineError(all, 1, /^ufdl-agent: could not remove the cached token file .*\.json: it is a directory$/);
    expect(await cacheFiles(dir)).toEqual([file]);
  });

  it('ignores a corrupt file, a FIFO, or one others may read, without a crash or a wait, and writes a good one', async () => {
    const server = await startTestServer();
    const { home, dir } = await cacheHome();
    const env = serverEnv(server, { XDG_CACHE_HOME: home });
    expect((await cli(['jobs'], { env })).code).toBe(0);
    const file = await onlyFile(dir);
    const good = await readFile(file, 'utf8');

    for (const bad of ['{"version": 1, "servers": [', '', 'null', '{"version": 1}', JSON.stringify({ ...JSON.parse(good), access: { token: 42 } })]) {
      await writeFile(file, bad, { mode: 0o600 });
      const before = await authCounts(server);
      const result = await cli(['jobs'], { env });
      expect(result.code, `${JSON.stringify(bad)}: ${result.stderr}`).toBe(0);
      expect(result.stderr).toBe('no jobs\n');
      expect((await authCounts(server)).obtain - before.obtain).toBe(1);
      expect(() => JSON.parse(readFileSync(file, 'utf8'))).not.toThrow();
    }

    // Not a regular file: a FIFO, which a plain open would wait on for a writer forever.
    await rm(file);
    execFileSync('mkfifo', ['-m', '600', file]);
    const fifo = await cli(['jobs'], { env, timeoutMs: 20_000 });
    expect(fifo.code, fifo.stderr).toBe(0);
    expect(statSync(file).isFile()).toBe(true);

    // Readable by others: not trusted (someone may have planted it), replaced by a 0600 one.
    await chmod(file, 0o644);
    const before = await authCounts(server);
    expect((await cli(['jobs'], { env })).code).toBe(0);
    expect((await authCounts(server)).obtain - before.obtain).toBe(1);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});
