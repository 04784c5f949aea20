/**
 * Several `ufdl-agent serve` processes on one data directory: replicas of one server sharing its
 * database — its SQLite file (which takes its write lock per transaction, so several processes may
 * use it), or one PostgreSQL database — its output store and its token secret. Each is a real
 * process that a test can SIGKILL. On SQLite they do not share what a process keeps in memory —
 * wake-ups and web-socket notifications stay on the replica where the change was made — so tests
 * wait on conditions, not on wake-up latency; on PostgreSQL those cross replicas (LISTEN/NOTIFY).
 */
import { buildOnce } from './build.js';
import { ADMIN_PASSWORD, ADMIN_USER, freePort, loginAt, spawnServe, type ServeProcess, type TestServer } from './server.js';
import { tempDir } from './temp-dir.js';

export interface Replica extends ServeProcess {
  /** The replica as a TestServer, for the helpers that take one (its admin token works on every replica). */
  server: TestServer;
  /** SIGKILL it and wait until it is gone. */
  kill(): Promise<void>;
}

export interface ReplicaOptions {
  /** Their shared PostgreSQL database (default: the store under test's choice, SQLite unless the suite runs on PostgreSQL). */
  databaseUrl?: string;
  /** Start them all at once rather than one after the other (migration and seeding race). */
  together?: boolean;
}

/**
 * Start `count` replicas on one new data directory, one after the other (the first creates the
 * database) unless `together`; `env[i]` adds variables to replica i (e.g. `UFDL_SERVER_FAIL_POINTS`).
 */
export async function startReplicas(
  count: number,
  env: Record<string, string>[] = [],
  options: ReplicaOptions = {},
): Promise<{ dataDir: string; replicas: Replica[] }> {
  await buildOnce();
  // Made first, so it is removed after spawnServe's own clean-up has killed the processes.
  const dataDir = await tempDir('ufdl-replicas-');
  const start = async (i: number): Promise<Replica> => {
    const serve = await spawnServe(dataDir, await freePort(), env[i] ?? {}, { databaseUrl: options.databaseUrl });
    const adminToken = await loginAt(serve.url, ADMIN_USER, ADMIN_PASSWORD);
    const server: TestServer = {
      url: serve.url,
      dataDir,
      databaseUrl: options.databaseUrl,
      adminToken,
      close: async () => {},
      login: (username, password) => loginAt(serve.url, username, password),
    };
    const kill = async () => {
      if (serve.child.exitCode === null && serve.child.signalCode === null) serve.child.kill('SIGKILL');
      await serve.exited;
    };
    return { ...serve, server, kill };
  };
  const indexes = Array.from({ length: count }, (_, i) => i);
  const replicas: Replica[] = [];
  if (options.together) replicas.push(...(await Promise.all(indexes.map(start))));
  else for (const i of indexes) replicas.push(await start(i));
  return { dataDir, replicas };
}
