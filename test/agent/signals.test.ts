/**
 * Signals (docs/ARCHITECTURE.md, "Signals"), with the agent as its own process: drain on the first SIGTERM, stop-and-requeue
 * on the second, SIGQUIT at once, the drain timeout — each with the job's final state on the server,
 * the plan in the log, and exit status 0.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/build.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  createJob,
  ended,
  fastAgentOptions,
  getJob,
  importTemplate,
  shellTemplate,
  spawnAgent,
  until,
  waitForJob,
  type AgentProcess,
} from '../helpers/agent.js';
import { tempDir } from '../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

async function setup(extensions = true, over: Record<string, unknown> = {}) {
  const server = await startTestServer({ extensions });
  const dir = await tempDir('ufdl-signals-');
  const options = fastAgentOptions(server, dir, over);
  const agent = spawnAgent(options);
  await agent.waitForLog((l) => l.msg === 'test agent running');
  return { server, dir, agent };
}

async function runningJob(server: TestServer, dir: string, seconds: number): Promise<{ pk: number; marker: string }> {
  const marker = join(dir, `started-${seconds}`);
  const template = await importTemplate(server, shellTemplate(`sleep-${seconds}`, `touch ${marker}\necho started\nsleep ${seconds}\necho finished\n`));
  const pk = await createJob(server, template);
  await until(() => existsSync(marker), 15_000, 'the child to start');
  return { pk, marker };
}

function planLogged(agent: AgentProcess, plan: string) {
  return agent.lines().some((l) => l.plan === plan);
}

describe('signals', () => {
  it('drains on SIGTERM: the running job finishes, no new job is taken, exit 0', async () => {
    const { server, dir, agent } = await setup();
    const { pk } = await runningJob(server, dir, 1.5);
    agent.kill('SIGTERM');
    await agent.waitForLog((l) => l.msg === 'agent draining');
    const later = await createJob(server, await importTemplate(server, shellTemplate('later', 'echo later\n')));
    const exit = await agent.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(planLogged(agent, 'drain')).toBe(true);
    const job = await getJob(server, pk);
    expect(job.end_time).not.toBeNull();
    expect(job.error_reason).toBeNull();
    expect(job.outputs.map((o) => o.name)).toContain('log');
    const untouched = await getJob(server, later);
    expect(untouched.node).toBeNull();
    expect(untouched.start_time).toBeNull();
  });

  it('stops now on a second SIGTERM: the job is requeued (finish with error, reset, release), exit 0', async () => {
    const { server, dir, agent } = await setup();
    const { pk } = await runningJob(server, dir, 30);
    agent.kill('SIGTERM');
    await agent.waitForLog((l) => l.plan === 'drain');
    agent.kill('SIGTERM');
    const exit = await agent.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(planLogged(agent, 'stop-now')).toBe(true);
    const job = await getJob(server, pk);
    expect(job).toMatchObject({ start_time: null, end_time: null, error_reason: null, node: null });
  });

  for (const extensions of [true, false]) {
    it(`stops now on SIGQUIT (${extensions ? 'extensions' : 'reference mode'}): the job can run again elsewhere`, async () => {
      const { server, dir, agent } = await setup(extensions);
      const { pk } = await runningJob(server, dir, 30);
      agent.kill('SIGQUIT');
      const exit = await agent.exited;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(planLogged(agent, 'stop-now')).toBe(true);
      const job = await getJob(server, pk);
      expect(job).toMatchObject({ start_time: null, error_reason: null, node: null });
      // The job really runs again on another agent.
      const again = spawnAgent(fastAgentOptions(server, await tempDir('ufdl-signals-'), { nodeIndex: 1 }));
      await again.waitForLog((l) => l.msg === 'test agent running');
      await waitForJob(server, pk, (j) => j.start_time !== null && j.node !== null);
      again.kill('SIGQUIT');
      await again.exited;
    });
  }

  it('stops the jobs still running when the drain timeout passes', async () => {
    const { server, dir, agent } = await setup(true, { drainTimeoutMs: 500 });
    const { pk } = await runningJob(server, dir, 30);
    agent.kill('SIGINT');
    const exit = await agent.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(agent.lines().some((l) => typeof l.msg === 'string' && l.msg.startsWith('drain timeout'))).toBe(true);
    const job = await getJob(server, pk);
    expect(job).toMatchObject({ start_time: null, node: null });
    expect(ended(job)).toBe(false);
  });
});
