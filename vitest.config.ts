import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// The CLI keeps its tokens in the user's cache directory (docs/OPERATIONS.md, "The CLI's token
// cache"): every CLI a test starts gets a throw-away one instead, never the real one.
const cacheHome = mkdtempSync(join(tmpdir(), 'ufdl-test-cache-'));
process.once('exit', () => rmSync(cacheHome, { recursive: true, force: true }));

// Tests run real servers, real SQLite files and real child processes on loopback. They are
// deterministic but not instantaneous, so the timeouts are generous for a loaded 2-core machine.
//
// Two projects: every test on the default store (SQLite), and the server's API suite (with the
// failover tests of agent and client through replicas) again with the server on PostgreSQL (a
// throw-away cluster for the run; test/helpers/store-under-test.ts). The files
// left out of the second are about SQLite itself (its pragmas, WAL, query plans, migrations) or
// drive the SQLite store directly; the PostgreSQL store has its own in test/server/postgres/.
const SQLITE_ONLY = [
  'test/server/checkpointer.test.ts',
  'test/server/durability.test.ts',
  'test/server/durability-barrier.test.ts',
  'test/server/migrations.test.ts',
  'test/server/query-plans.test.ts',
  'test/server/store-layering.test.ts',
  'test/server/sweeper.test.ts',
  'test/server/sweeper-resolution.test.ts',
  'test/server/turn-batch.test.ts',
  'test/server/postgres/**',
];

export default defineConfig({
  test: {
    env: { XDG_CACHE_HOME: cacheHome },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'sqlite', include: ['test/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'postgres',
          // The API suite, and the agent and client against replicas (failover through real replicas).
          include: ['test/server/**/*.test.ts', 'test/agent/failover.test.ts', 'test/client/replica-watch.test.ts'],
          exclude: SQLITE_ONLY,
          env: { XDG_CACHE_HOME: cacheHome, UFDL_TEST_STORE: 'postgres' },
          globalSetup: ['test/helpers/pg-global-setup.ts'],
        },
      },
    ],
  },
});
