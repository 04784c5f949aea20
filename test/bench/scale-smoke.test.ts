/**
 * The scale benchmark's bounded form, as a smoke test: that it runs — a server, a generator process
 * of simulated nodes long-polling with X-UFDL-Wait, jobs created one at a time — and that every job
 * is dispatched to a node without a failed request. Its timings are the benchmark's business
 * (`npm run bench:scale`), never asserted here.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/build.js';

const REPO = resolve(import.meta.dirname, '../..');

describe('bench/scale.bench.mjs --bounded', () => {
  it('runs, and dispatches every job without an error', async () => {
    await buildOnce();
    const child = spawn(process.execPath, [join(REPO, 'bench/scale.bench.mjs'), '--bounded'], {
      cwd: REPO,
      env: { ...process.env, UFDL_BENCH_NO_RECORD: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    expect(output).toMatch(/dispatched (\d+) of \1 jobs/);
    expect(output).toMatch(/; errors 0$/m);
    expect(code, output).toBe(0);
  }, 180_000);
});
