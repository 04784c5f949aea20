/**
 * Several `ufdl-agent serve` processes on one data directory: replicas of one server sharing its
 * SQLite database (which takes its write lock per transaction, so several processes may use it), its
 * output store and its token secret. Each is a real process that a test can SIGKILL. What they do
 * not share is what a process keeps in memory — wake-ups and web-socket notifications stay on the
 * replica where the change was made — so tests wait on conditions, not on wake-up latency.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { buildOnce } from './build.js';
import { ADMIN_PASSWORD, ADMIN_USER, freePort, loginAt, spawnServe, type ServeProcess, type TestServer } from './server.js';

export interface Replica extends ServeProcess {
  /** The replica as a TestServer, for the helpers that take one (its admin token works on every replica). */
  server: TestServer;
  /** SIGKILL it and wait until it is gone. */
  kill(): Promise<void>;
}

/**
 * Start `count` replicas on one new data directory, one after the other (the first creates the
 * database); `env[i]` adds variables to replica i (e.g. `UFDL_SERVER_FAIL_POINTS`).
 */
export async function startReplicas(count: number, env: Record<string, string>[] = []): Promise<{ dataDir: string; replicas: Replica[] }> {
  await buildOnce();
  const dataDir = await mkdtemp(join(tmpdir(), 'ufdl-replicas-'));
  const replicas: Replica[] = [];
  // Registered first, so it runs after spawnServe's own clean-up has killed the processes.
  onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
  for (let i = 0; i < count; i++) {
    const serve = await spawnServe(dataDir, await freePort(), env[i] ?? {});
    const adminToken = await loginAt(serve.url, ADMIN_USER, ADMIN_PASSWORD);
    const server: TestServer = {
      url: serve.url,
      dataDir,
      adminToken,
      close: async () => {},
      login: (username, password) => loginAt(serve.url, username, password),
    };
    const kill = async () => {
      if (serve.child.exitCode === null && serve.child.signalCode === null) serve.child.kill('SIGKILL');
      await serve.exited;
    };
    replicas.push({ ...serve, server, kill });
  }
  return { dataDir, replicas };
}
