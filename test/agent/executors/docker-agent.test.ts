/**
 * Docker jobs through the whole agent and the embedded server, on a real engine: a job runs in its
 * container and its output reaches the server; cancel and a drain that times out stop its container;
 * after the agent and its job's `docker run`
 * client are killed together (as a systemd stop kills the agent's cgroup) the restarted agent follows
 * the container that kept running; a container no journal entry owns is removed at start-up.
 * Without an engine these tests fail, unless UFDL_SKIP_DOCKER_TESTS=1 (see test/helpers/docker.ts).
 */
import Database from 'better-sqlite3';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { findWrapper } from '../../../src/agent/child/attach.js';
import { childrenOf } from '../../../src/agent/child/proc.js';
import { jobDirPaths, type JobDir } from '../../../src/agent/child/job-dir.js';
import { dockerAgentId } from '../../../src/agent/executors/docker.js';
import type { AgentOptions } from '../../../src/agent/index.js';
import { LABEL } from '../../../src/agent/executors/docker-engine.js';
import { createJob, downloadOutput, ended, fastAgentOptions, getJob, importTemplate, runTemplate, spawnAgent, startTestAgent, until, waitForJob, type AgentProcess } from '../../helpers/agent.js';
import { buildOnce } from '../../helpers/build.js';
import { docker, dockerSkipNote, inspect, requireDockerEngine, skipDocker } from '../../helpers/docker.js';
import { api, startTestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

const IMAGE = process.env.UFDL_DOCKER_TEST_IMAGE || 'local/debian:bookworm';

/** A Docker template running `script` with `sh -c` in the test image. */
function dockerTemplate(name: string, script: string): Record<string, unknown> {
  return runTemplate(name, 'ufdl_agent.Docker', {
    image: { types: ['str'], default: IMAGE, const: true, help: 'the image' },
    body: { types: ['Array<str>'], default: ['sh', '-c', script], const: true, help: 'the command' },
  });
}

/**
 * The names of the containers of job `pk` of `server`, running or not. Every test's server numbers its
 * jobs from 1: a container another test left behind is not this job's.
 */
async function containersOf(server: { url: string }, pk: number): Promise<string[]> {
  const out = await docker(['container', 'ls', '--all', '--filter', `label=${LABEL.job}=${pk}`, '--format', `{{.Names}} {{.Label "${LABEL.server}"}}`]);
  return out.stdout
    .split('\n')
    .map((line) => line.split(' '))
    .filter(([name, serverUrl]) => name && serverUrl?.replace(/\/$/, '') === server.url.replace(/\/$/, ''))
    .map(([name]) => name!);
}

/** An agent's directory; the containers its agent left are removed when the test finishes, then the directory. */
async function agentDir(): Promise<string> {
  const dir = await tempDir('ufdl-docker-agent-');
  onTestFinished(async () => {
    const left = (await docker(['container', 'ls', '--all', '--quiet', '--filter', `label=${LABEL.agent}=${dockerAgentId(join(dir, 'work'))}`])).stdout.split('\n').filter(Boolean);
    if (left.length > 0) await docker(['container', 'rm', '--force', ...left]).catch(() => {});
  });
  return dir;
}

/** Start an agent with `options`; resolves once job `pk`'s one container runs, with the agent and the container's name. */
async function agentWithRunningContainer(server: { url: string }, options: AgentOptions, pk: number): Promise<{ agent: AgentProcess; name: string }> {
  const agent = spawnAgent(options);
  const running = async () => {
    const names = await containersOf(server, pk);
    return names.length === 1 && (await inspect(names[0]!, '{{.State.Running}}')) === 'true';
  };
  await until(running, 120_000, 'the container to run');
  return { agent, name: (await containersOf(server, pk))[0]! };
}

/** What a systemd stop does: the agent, the job's wrapper and its docker CLI die; the container does not. */
async function killLikeSystemdStop(agent: AgentProcess, jobDir: JobDir): Promise<void> {
  const wrapper = findWrapper(jobDir);
  expect(wrapper).toBeDefined();
  agent.kill('SIGKILL');
  process.kill(-wrapper!.pid, 'SIGKILL');
  await agent.exited;
}

describe.skipIf(skipDocker)(`Docker jobs through the agent${dockerSkipNote}`, () => {
  beforeAll(async () => {
    requireDockerEngine();
    await buildOnce();
  }, 300_000);

  it('runs a job in its container as the agent user: its output reaches the server, and the container is removed', async () => {
    const server = await startTestServer();
    const template = await importTemplate(
      server,
      dockerTemplate('docker-hello', 'echo "UFDL-PROGRESS 0.5"; echo "hello from $(id -u)" > "$UFDL_OUTPUT_DIR/hello.txt"; echo "UFDL-PROGRESS 1"'),
    );
    const pk = await createJob(server, template);
    await startTestAgent(server, { docker: true }, await agentDir());
    const job = await waitForJob(server, pk, ended, 120_000);
    expect(job.error_reason).toBeNull();
    expect((await downloadOutput(server, pk, 'hello.txt')).toString()).toBe(`hello from ${process.getuid!()}\n`);
    expect(await containersOf(server, pk)).toEqual([]);
  }, 180_000);

  it('stops the container of a cancelled job, and of a job still running when a drain times out; none is left', async () => {
    const server = await startTestServer();
    const template = await importTemplate(server, dockerTemplate('docker-forever', 'trap "" TERM; echo started; while :; do sleep 1; done'));
    const running = async (pk: number) => {
      await until(async () => {
        const [name] = await containersOf(server, pk);
        return name !== undefined && (await inspect(name, '{{.State.Running}}')) === 'true';
      }, 120_000, `the container of job ${pk} to run`);
    };
    const { agent } = await startTestAgent(server, { docker: true, killGraceMs: 1000, drainTimeoutMs: 2000 }, await agentDir());

    const cancelled = await createJob(server, template);
    await running(cancelled);
    expect((await api(server.url, 'DELETE', `/v1/jobs/${cancelled}/cancel`, { token: server.adminToken })).status).toBe(200);
    await until(async () => (await containersOf(server, cancelled)).length === 0, 60_000, 'the cancelled job\'s container to be removed');

    const drained = await createJob(server, template);
    await running(drained);
    agent.drain('test: drain');
    await until(async () => (await getJob(server, drained)).start_time === null && (await containersOf(server, drained)).length === 0, 60_000, 'the job to be requeued and its container removed');
  }, 300_000);

  // An agent in a container that is re-created (an upgrade, `docker compose up`) comes back with a
  // new hostname and the same journal: it is still the agent that started the job's container. So
  // is one upgraded from a version whose journal kept no identity (its labels had the old hostname).
  for (const [recreated, upgraded] of [[false, false], [true, false], [true, true]]) {
    const how = recreated ? ` under another hostname${upgraded ? ', from a journal of an earlier version' : ''}` : '';
    it(`follows, after a restart${how}, the container whose client died with the agent, and removes containers no journal entry owns`, async () => {
      const server = await startTestServer();
      const dir = await agentDir();
      const options = fastAgentOptions(server, dir, { docker: true });
      const template = await importTemplate(
        server,
        dockerTemplate('docker-outlives', `echo started; while [ ! -e "$UFDL_JOB_DIR/go" ]; do sleep 0.2; done; echo resumed > "$UFDL_OUTPUT_DIR/after.txt"`),
      );
      const pk = await createJob(server, template);

      const { agent: first, name } = await agentWithRunningContainer(server, options, pk);
      const jobDir = jobDirPaths(options.workDir, server.url, pk);
      await killLikeSystemdStop(first, jobDir);
      await until(() => findWrapper(jobDir) === undefined, 20_000, 'the wrapper to be gone');
      expect(await inspect(name, '{{.State.Running}}')).toBe('true');
      // A container of this agent that no journal entry owns (as a crash at the wrong moment leaves one).
      const stray = `ufdl-job-999999-1-${process.pid}`;
      await docker([
        'run', '--detach', '--name', stray,
        '--label', `${LABEL.job}=999999`, '--label', `${LABEL.attempt}=1`,
        '--label', `${LABEL.agent}=${dockerAgentId(options.workDir)}`, '--label', `${LABEL.server}=${server.url}`,
        IMAGE, 'sleep', '120',
      ]);

      if (upgraded) {
        const journal = new Database(options.journalFile!);
        journal.prepare(`DELETE FROM settings WHERE key = 'agent-identity'`).run();
        journal.close();
      }
      const second = spawnAgent(options, {}, recreated ? { prefix: ['unshare', '--uts', '--', 'sh', '-c', 'hostname ufdl-recreated-agent && exec "$0" "$@"'] } : {});
      await second.waitForLog((l) => l.msg === "the job's child is gone but its container is not; following the container", 60_000);
      if (recreated) expect(second.lines()[0]?.['hostname']).toBe('ufdl-recreated-agent');
      const swept = await second.waitForLog((l) => l.msg === 'removed job containers that no unfinished journal entry owns', 60_000);
      expect(swept['containers']).toEqual([stray]);
      await docker(['exec', name, 'touch', `${jobDir.root}/go`]);
      const job = await waitForJob(server, pk, ended, 120_000);
      expect(job.error_reason).toBeNull();
      expect((await downloadOutput(server, pk, 'after.txt')).toString()).toBe('resumed\n');
      await until(async () => (await containersOf(server, pk)).length === 0, 30_000, 'the container to be removed');
      expect((await getJob(server, pk)).end_time).not.toBeNull();
      second.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
    }, 300_000);
  }
  it("keeps the job's time limit when the restarted agent follows its container: it is not given its whole time again", async () => {
    const server = await startTestServer();
    const dir = await agentDir();
    const options = fastAgentOptions(server, dir, { docker: true });
    const limitS = 20;
    const template = await importTemplate(
      server,
      runTemplate('docker-limited', 'ufdl_agent.Docker', {
        image: { types: ['str'], default: IMAGE, const: true, help: 'the image' },
        body: { types: ['Array<str>'], default: ['sh', '-c', 'echo started; while [ ! -e "$UFDL_JOB_DIR/go" ]; do sleep 0.2; done; echo finished'], const: true, help: 'the command' },
        time_limit: { types: ['float'], default: limitS, const: true, help: 'seconds' },
      }),
    );
    const pk = await createJob(server, template);

    const { agent: first, name } = await agentWithRunningContainer(server, options, pk);
    const jobDir = jobDirPaths(options.workDir, server.url, pk);
    await killLikeSystemdStop(first, jobDir);
    // The agent stays down until the job has used up its time limit.
    const startedAt = Date.parse(await inspect(name, '{{.State.StartedAt}}'));
    await until(async () => Date.now() > startedAt + limitS * 1000 + 2000, 60_000, 'the time limit to pass');

    const second = spawnAgent(options);
    onTestFinished(() => second.kill('SIGKILL'));
    await second.waitForLog((l) => l.job === pk && l.msg === 're-attached to the running child', 60_000);
    // From here the job would end by itself at once: only a time limit already enforced stops it first.
    await writeFile(join(jobDir.root, 'go'), '');
    const job = await waitForJob(server, pk, ended, 120_000);
    expect(job.error_reason ?? 'succeeded').toMatch(/^Time limit of 20 s exceeded/);
    await until(async () => (await containersOf(server, pk)).length === 0, 30_000, 'the container to be removed');
  }, 300_000);

  it('removes the container of a job whose stop the killed agent had begun, once the restarted agent has requeued it', async () => {
    const server = await startTestServer();
    const dir = await agentDir();
    const options = fastAgentOptions(server, dir, { docker: true, killGraceMs: 20_000 });
    const template = await importTemplate(server, dockerTemplate('docker-stubborn', 'trap "" TERM; echo started; while :; do sleep 1; done'));
    const pk = await createJob(server, template);

    const { agent: first, name } = await agentWithRunningContainer(server, options, pk);
    const wrapper = findWrapper(jobDirPaths(options.workDir, server.url, pk));
    // Stop now: the agent decides to requeue the job, then waits out the container's grace...
    first.kill('SIGQUIT');
    await first.waitForLog((l) => l.job === pk && l.msg === 'stopping the child' && l.reason === 'shutdown', 60_000);
    // ...when it dies with its whole cgroup (TimeoutStopSec, or a crash): agent, docker CLIs, wrapper.
    const clis = childrenOf(first.child.pid!);
    first.kill('SIGKILL');
    for (const pid of clis) process.kill(pid, 'SIGKILL');
    process.kill(-wrapper!.pid, 'SIGKILL');
    await first.exited;

    // Recovery first stops the container, which ignores SIGTERM, for the whole kill grace (a shorter
    // one now, as after a change of configuration). The job is then requeued, not finished. (The
    // server's job row is no witness: this agent, the only node, may take the job again at once.)
    const second = spawnAgent({ ...options, killGraceMs: 2_000 });
    await second.waitForLog((l) => l.job === pk && l.msg === 'job left this node', 150_000).then((l) => expect(l.outcome).toBe('requeued'));
    // Nothing of this attempt may go on running or be left behind.
    await until(async () => !(await containersOf(server, pk)).includes(name), 90_000, 'the container to be removed');
    expect((await getJob(server, pk)).end_time).toBeNull();
    // The agent may have taken the job again: a second SIGTERM stops it now, and requeues it again.
    second.kill('SIGTERM');
    second.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    expect(await containersOf(server, pk)).toEqual([]);
  }, 300_000);

  it("kills the container of a frozen agent's job when the job lease lapses, though it ignores SIGTERM", async () => {
    // lost_after 6 s, fence_margin 2.5 s: the lease lapses 3.5 s after the server's last answer.
    const server = await startTestServer({ lostAfterSeconds: 6, sweepIntervalSeconds: 0.5 });
    const dir = await agentDir();
    const options = fastAgentOptions(server, dir, { docker: true, fenceMarginMs: 2_500, killGraceMs: 500, heartbeatIntervalMs: 300 });
    const template = await importTemplate(server, dockerTemplate('docker-frozen', 'trap "" TERM; while :; do sleep 1; done'));
    const pk = await createJob(server, template);
    const { agent, name } = await agentWithRunningContainer(server, options, pk);
    onTestFinished(() => {
      try {
        process.kill(agent.child.pid!, 'SIGCONT');
        agent.kill('SIGKILL');
      } catch {
        // already gone
      }
    });
    const jobDir = jobDirPaths(options.workDir, server.url, pk);

    process.kill(agent.child.pid!, 'SIGSTOP');
    // Without the agent, the wrapper ends the container itself: SIGTERM to `docker run`, then the kill.
    await until(async () => (await inspect(name, '{{.State.Running}}')) === 'false', 90_000, 'the container to stop');
    expect(await inspect(name, '{{.State.ExitCode}}')).toBe('137');
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(jobDir.consolePath, 'utf8')).toContain('the agent did not renew the job lease in time');
    await until(() => findWrapper(jobDir) === undefined, 60_000, 'the wrapper to be gone');

    // Back from its freeze, the agent lets the job go and removes the container.
    process.kill(agent.child.pid!, 'SIGCONT');
    await agent.waitForLog((l) => l.job === pk && l.msg === 'job left this node', 60_000);
    await until(async () => (await containersOf(server, pk)).length === 0, 60_000, 'the container to be removed');
    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
  }, 300_000);
});
