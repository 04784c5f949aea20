/**
 * Children that misbehave: non-zero exit, silence, SIGTERM ignored, grandchildren left behind, a time
 * limit, a flood of progress lines, a cancel while running — each with the job's final state on the
 * server asserted, and the agent free for the next job afterwards.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobDirPaths } from '../../src/agent/child/job-dir.js';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import {
  alive,
  createJob,
  downloadOutput,
  ended,
  importTemplate,
  shellTemplate,
  started,
  startTestAgent,
  until,
  waitForJob,
  watchUntilEnded,
} from '../helpers/agent.js';

async function runScript(server: TestServer, name: string, script: string, extra: Record<string, unknown> = {}): Promise<number> {
  const template = await importTemplate(server, shellTemplate(name, script, extra));
  return createJob(server, template, { notifications: true });
}

async function pidsIn(file: string): Promise<number[]> {
  return (await readFile(file, 'utf8')).split(/\s+/).filter(Boolean).map(Number);
}

async function cancel(server: TestServer, pk: number): Promise<void> {
  const res = await api(server.url, 'DELETE', `/v1/jobs/${pk}/cancel`, { token: server.adminToken });
  expect(res.status).toBe(200);
}

for (const extensions of [true, false]) {
  describe(`misbehaving children (${extensions ? 'extensions' : 'reference mode'})`, () => {
    it('reports a non-zero exit with the tail of the log, and uploads the log', async () => {
      const server = await startTestServer({ extensions });
      await startTestAgent(server);
      const pk = await runScript(server, 'fails', 'echo "working on it"\necho "something broke" >&2\nexit 3\n');
      const job = await waitForJob(server, pk, ended);
      expect(job.error_reason).toMatch(/exited with status 3/);
      expect(job.error_reason).toContain('something broke');
      expect(job.error_reason).toContain('working on it');
      expect((await downloadOutput(server, pk, 'log')).toString()).toContain('something broke');
    });

    it('runs a child that never prints, and cancels it by the timer or the web-socket', async () => {
      const server = await startTestServer({ extensions });
      const { agent } = await startTestAgent(server, { cancelCheckIntervalMs: 300 });
      const quiet = await runScript(server, 'quiet', 'sleep 0.3\n');
      expect((await waitForJob(server, quiet, ended)).error_reason).toBeNull();
      expect((await downloadOutput(server, quiet, 'log')).length).toBeLessThan(40);

      const silent = await runScript(server, 'silent', 'sleep 30\n');
      await waitForJob(server, silent, started);
      await until(() => agent.getStatus().jobs.some((j) => j.jobPk === silent && j.pid !== null), 10_000, 'the child');
      const t = Date.now();
      await cancel(server, silent);
      await until(() => agent.getStatus().jobs.length === 0, 10_000, 'the slot to be free');
      expect(Date.now() - t).toBeLessThan(5000);
      const job = await waitForJob(server, silent, (j) => j.is_cancelled);
      expect(job.end_time).toBeNull();
      // The node is free: the next job runs.
      const next = await runScript(server, 'after-cancel', 'echo next\n');
      expect((await waitForJob(server, next, ended)).error_reason).toBeNull();
    });

    it('kills a child that ignores SIGTERM after the grace period', async () => {
      const server = await startTestServer({ extensions });
      const { dir } = await startTestAgent(server, { killGraceMs: 300 });
      const pidFile = join(dir, 'stubborn.pid');
      const pk = await runScript(server, 'stubborn', `trap '' TERM\necho $$ > ${pidFile}\nwhile true; do sleep 0.1; done\n`);
      await waitForJob(server, pk, started);
      await until(() => existsSync(pidFile), 10_000, 'the pid file');
      const [pid] = await pidsIn(pidFile);
      expect(alive(pid!)).toBe(true);
      await cancel(server, pk);
      await until(() => !alive(pid!), 10_000, 'the stubborn child to die');
      await waitForJob(server, pk, (j) => j.is_cancelled);
    });

    it('stops grandchildren the command leaves behind', async () => {
      const server = await startTestServer({ extensions });
      const { dir } = await startTestAgent(server);
      const pidFile = join(dir, 'grandchildren.pid');
      const script = `sleep 60 &\necho $! >> ${pidFile}\n(sleep 60 &\necho $! >> ${pidFile})\nsetsid sleep 0 2>/dev/null || true\necho done\n`;
      const pk = await runScript(server, 'forks', script);
      const job = await waitForJob(server, pk, ended);
      expect(job.error_reason).toBeNull();
      const pids = await pidsIn(pidFile);
      expect(pids).toHaveLength(2);
      await until(() => pids.every((p) => !alive(p)), 10_000, 'the grandchildren to be stopped');
    });

    it('enforces the time limit', async () => {
      const server = await startTestServer({ extensions });
      await startTestAgent(server);
      const pk = await runScript(server, 'slow', 'echo start\nsleep 30\n', {
        time_limit: { types: ['float'], default: 0.5, const: true, help: 'seconds' },
      });
      const job = await waitForJob(server, pk, ended);
      expect(job.error_reason).toMatch(/Time limit of 0\.5 s exceeded/);
    });

    it('coalesces a flood of progress lines and always sends the last value', async () => {
      const server = await startTestServer({ extensions });
      const flood = `awk 'BEGIN { for (i = 1; i <= 10000; i++) printf "UFDL-PROGRESS %.4f {\\"i\\": %d}\\n", i / 20000, i }'\nsleep 1\nawk 'BEGIN { for (i = 10001; i <= 20000; i++) printf "UFDL-PROGRESS %.4f {\\"i\\": %d}\\n", i / 20000, i }'\n`;
      const pk = await runScript(server, 'flood', flood);
      const { job, messages } = await watchUntilEnded(server, pk, () => startTestAgent(server, { progressIntervalMs: 100 }));
      expect(job.error_reason).toBeNull();
      expect(messages.some((m) => m.transition === 'finish')).toBe(true);
      const progress = messages.filter((m) => m.transition === 'progress');
      // 20 000 lines over about a second: a handful of reports, not thousands.
      expect(progress.length).toBeGreaterThan(0);
      expect(progress.length).toBeLessThan(60);
      expect(progress.at(-1)).toMatchObject({ progress: 1, transition_data: { i: 20000 } });
    });

    it('reports progress data and a last line holding a NUL or a lone surrogate, as U+FFFD', async () => {
      const server = await startTestServer({ extensions });
      // JSON escapes the server refuses in any body: the agent makes them storable first.
      const script = `printf '%s\\n' 'UFDL-PROGRESS 0.5 {"note":"a\\u0000b","k\\ud800":["\\udc00"]}'\nsleep 1\nprintf 'last \\000 line\\n'\nexit 3\n`;
      const pk = await runScript(server, 'unstorable', script);
      const { job, messages } = await watchUntilEnded(server, pk, () => startTestAgent(server, { progressIntervalMs: 100 }));
      expect(job.error_reason).toMatch(/exit(ed)? .*3[\s\S]*last \uFFFD line/);
      const progress = messages.filter((m) => m.transition === 'progress');
      expect(progress.at(-1)).toMatchObject({ progress: 0.5, transition_data: { note: 'a\uFFFDb', 'k\uFFFD': ['\uFFFD'] } });
    });
  });
}

describe('outputs', () => {
  it('uploads binary outputs byte-identical to what the child wrote', async () => {
    const server = await startTestServer();
    const { dir } = await startTestAgent(server, { keepJobDirs: true });
    const pk = await runScript(server, 'binary', 'head -c 3000000 /dev/urandom > "$UFDL_OUTPUT_DIR/random.bin"\nprintf "" > "$UFDL_OUTPUT_DIR/empty.bin"\n');
    const job = await waitForJob(server, pk, ended);
    expect(job.error_reason).toBeNull();
    const local = await readFile(join(jobDirPaths(join(dir, 'work'), server.url, pk).outputDir, 'random.bin'));
    expect(local.length).toBe(3_000_000);
    expect((await downloadOutput(server, pk, 'random.bin')).equals(local)).toBe(true);
    expect((await downloadOutput(server, pk, 'empty.bin')).length).toBe(0);
  });

  it('fails a successful job whose declared output is missing', async () => {
    const server = await startTestServer();
    await startTestAgent(server);
    const pk = await runScript(server, 'forgetful', 'echo "forgot the model"\n', {
      outputs: { types: ['JSON'], default: { 'model.bin': 'BLOB' }, const: true, help: 'declared outputs' },
    });
    const job = await waitForJob(server, pk, ended);
    expect(job.error_reason).toMatch(/model\.bin/);
  });

  it('removes job directories unless asked to keep them', async () => {
    const server = await startTestServer();
    const { dir } = await startTestAgent(server);
    const pk = await runScript(server, 'tidy', 'echo tidy > "$UFDL_OUTPUT_DIR/x.txt"\n');
    await waitForJob(server, pk, ended);
    await until(() => !existsSync(jobDirPaths(join(dir, 'work'), server.url, pk).root), 5000, 'the job directory to go');
  });
});
