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
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    env: { XDG_CACHE_HOME: cacheHome },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
