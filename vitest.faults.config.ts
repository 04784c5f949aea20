import { defineConfig } from 'vitest/config';

// The fault campaign (issue 5; test/faults/README.md): real server and agent processes from the built CLI
// (`npm run build` first; `npm run test:faults` does), SIGKILLs, a TCP proxy, a bad-input storm.
// Scenarios run one at a time: each one loads the machine on its own, and they must not share ports
// or CPU with each other. `UFDL_FAULTS_SCALE=ci` (the default) is the bounded form CI runs;
// `UFDL_FAULTS_SCALE=full` runs the numbers of the issue.
const full = process.env.UFDL_FAULTS_SCALE === 'full';

export default defineConfig({
  test: {
    include: ['test/faults/**/*.fault.ts'],
    testTimeout: full ? 30 * 60_000 : 10 * 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ['default'],
  },
});
