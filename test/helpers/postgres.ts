/**
 * A throw-away PostgreSQL cluster for tests (the cluster itself: bench/lib/pg-cluster.mjs, shared with
 * the benchmarks): initdb into a fresh temporary directory, started on a free loopback port as the
 * `postgres` user when we are root, stopped and removed by `stop()`. Host connections need the
 * password, as a real deployment's would; `url` carries it.
 */
import { afterAll, beforeAll } from 'vitest';
import { startPgCluster, type PgCluster } from '../../bench/lib/pg-cluster.mjs';

export { PG_BIN, PG_PASSWORD, PG_USER, startPgCluster, type PgCluster } from '../../bench/lib/pg-cluster.mjs';

/**
 * One cluster for the calling test file: started before its first test, stopped after its last.
 * `get()` returns it; each test makes its own database with `createDatabase`.
 */
export function usePgCluster(): { get(): PgCluster } {
  let cluster: PgCluster | undefined;
  beforeAll(async () => {
    cluster = await startPgCluster();
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 120_000);
  return {
    get() {
      if (!cluster) throw new Error('the PostgreSQL cluster is not running');
      return cluster;
    },
  };
}
