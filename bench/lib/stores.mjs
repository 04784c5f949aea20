// Which store the benchmarked server runs on, and how many replicas: `--store sqlite` (the default:
// one `serve` process on its own data directory) or `--store postgres:3` (a throw-away PostgreSQL
// cluster, and three `serve` processes on one database and one shared data directory, as a
// deployment behind a load balancer runs them). A comma list compares several in one run.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { machineLabel, recordResult, today } from './machine.mjs';
import { PG_PASSWORD, startPgCluster } from './pg-cluster.mjs';
import { procStats, startServe } from './processes.mjs';

/**
 * `--store` and `--replicas` as a list of { store, replicas, label }: `sqlite`, `postgres`,
 * `postgres:3`; a spec without `:N` takes `--replicas`. Exits with a clear message on a bad value.
 */
export function parseStores(storeFlag, replicasFlag = '1') {
  return storeFlag.split(',').map((spec) => {
    const [store, count = replicasFlag] = spec.trim().split(':');
    const replicas = Number(count);
    if ((store !== 'sqlite' && store !== 'postgres') || !Number.isInteger(replicas) || replicas < 1 || (store === 'sqlite' && replicas !== 1)) {
      console.error(`--store: expected sqlite or postgres[:replicas] (replicas ≥ 1; SQLite runs one process), got ${JSON.stringify(spec)}`);
      process.exit(2);
    }
    return { store, replicas, label: store === 'sqlite' ? 'SQLite' : `PostgreSQL ×${replicas}` };
  });
}

/** True when the list is the plain default (one SQLite process), i.e. the benchmark's historic run. */
export const onlySqlite = (stores) => stores.length === 1 && stores[0].store === 'sqlite';

/**
 * Start the servers of one store spec (see processes.mjs's startServe for `extraArgs`, `env` and
 * `nodeArgs`). Returns { urls, servers, dataDir, cpuSeconds(), databaseCounts(), stop() }:
 * `cpuSeconds()` sums the replicas' CPU and, on PostgreSQL, the cluster's (the postmaster and its
 * children); `databaseCounts()` is { statements, transactions } run so far on PostgreSQL (from
 * pg_stat_statements: every statement, and the explicit transactions by their BEGIN; the counting
 * queries included), undefined on SQLite.
 */
export async function startStore({ store, replicas }, { extraArgs = [], env = {}, nodeArgs = [] } = {}) {
  if (store === 'sqlite') {
    const server = await startServe({ extraArgs, env, nodeArgs });
    return {
      urls: [server.url],
      servers: [server],
      dataDir: server.dataDir,
      cpuSeconds: () => cpuOf([server.child.pid]),
      databaseCounts: async () => undefined,
      async stop() {
        await server.stop({ removeData: true });
      },
    };
  }
  // pg_stat_statements counts the statements a benchmark's requests send (top-level ones: round trips).
  const cluster = await startPgCluster({ settings: { shared_preload_libraries: 'pg_stat_statements' } });
  const servers = [];
  const dataDir = await mkdtemp(join(tmpdir(), 'ufdl-bench-replicas-'));
  let counter;
  const stop = async () => {
    await counter?.end().catch(() => {});
    await Promise.all(servers.map((s) => s.stop()));
    await cluster.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    // The password through the environment, as OPERATIONS.md advises, not in the URL.
    const url = new URL(await cluster.createDatabase('ufdl_bench'));
    counter = new pg.Client({ connectionString: url.toString() });
    await counter.connect();
    await counter.query('CREATE EXTENSION pg_stat_statements');
    url.password = '';
    const pgEnv = { ...env, UFDL_DATABASE_PASSWORD: PG_PASSWORD };
    // One after the other: the first runs the migrations (the others would wait on its lock anyway).
    for (let i = 0; i < replicas; i++) {
      servers.push(await startServe({ dataDir, extraArgs: ['--database', url.toString(), ...extraArgs], env: pgEnv, nodeArgs }));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    urls: servers.map((s) => s.url),
    servers,
    dataDir,
    cpuSeconds: async () => (await cpuOf(servers.map((s) => s.child.pid))) + (await clusterCpu(cluster.dir)),
    async databaseCounts() {
      const { rows } = await counter.query(
        `SELECT sum(calls) AS statements, coalesce(sum(calls) FILTER (WHERE upper(query) = 'BEGIN'), 0) AS transactions
           FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      return { statements: Number(rows[0].statements), transactions: Number(rows[0].transactions) };
    },
    stop,
    get counter() {
      return counter;
    },
  };
}

async function cpuOf(pids) {
  let total = 0;
  for (const pid of pids) total += (await procStats(pid)).cpuSeconds;
  return total;
}

/**
 * CPU seconds of the cluster's processes: the postmaster (its data directory is under `dir`) and its
 * children, the backends of ended connections included (a process's cutime counts its waited-for children).
 */
async function clusterCpu(dir) {
  const { readdir, readFile } = await import('node:fs/promises');
  let total = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
      if (!cmdline[0]?.endsWith('/postgres') || !cmdline.includes(join(dir, 'data'))) continue;
      const stat = (await readFile(`/proc/${entry}/stat`, 'utf8')).split(') ')[1].split(' ');
      // utime, stime, cutime, cstime
      total += (Number(stat[11]) + Number(stat[12]) + Number(stat[13]) + Number(stat[14])) / 100;
      const children = (await readFile(`/proc/${entry}/task/${entry}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean);
      for (const child of children) {
        const cstat = (await readFile(`/proc/${child}/stat`, 'utf8')).split(') ')[1].split(' ');
        total += (Number(cstat[11]) + Number(cstat[12])) / 100;
      }
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

/** A dated row of docs/BENCHMARKS.md's "PostgreSQL and replicas" (the lifecycle and dispatch benchmarks). */
export function recordStoreRow({ load, benchmark, spec, result, latency, errors, notes }) {
  return recordResult(
    'PostgreSQL and replicas',
    ['date', 'machine', 'load avg before → after', 'benchmark', 'store', 'replicas', 'result', 'p50 / p99', 'errors', 'notes'],
    [today(), machineLabel(), load, benchmark, spec.store === 'sqlite' ? 'SQLite' : 'PostgreSQL 15', spec.replicas, result, latency, errors, notes],
  );
}
