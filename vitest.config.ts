import { defineConfig } from 'vitest/config';

// Tests run real servers, real SQLite files and real child processes on loopback. They are
// deterministic but not instantaneous, so the timeouts are generous for a loaded 2-core machine.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
