/**
 * The image, built from the shipped Dockerfile and run on a real Docker engine: `standalone` comes up
 * healthy through the image's own HEALTHCHECK, takes a job and runs it, runs as the unprivileged
 * user, stops with status 0 well within the grace when `docker stop` sends SIGTERM, and its data
 * volume outlives the container; `run` connects to a server outside the container.
 *
 * One build per test run (layer caching makes a rebuild after a source change quick). The base image
 * is the build argument NODE_IMAGE: `node:20-bookworm-slim` here unless UFDL_IMAGE_TEST_NODE_IMAGE
 * names another (the Dockerfile's default is the current Node LTS, which needs a registry).
 * Without an engine the tests fail, unless UFDL_SKIP_DOCKER_TESTS=1 (see test/helpers/docker.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJob, downloadOutput, importTemplate, REPO, until, waitForJob, type ServerJob } from '../helpers/agent.js';
import { docker, dockerSkipNote, inspect, removeAll, requireDockerEngine, skipDocker } from '../helpers/docker.js';
import { ADMIN_PASSWORD, ADMIN_USER, api, freePort, startTestServer, type TestServer } from '../helpers/server.js';

const NODE_IMAGE = process.env.UFDL_IMAGE_TEST_NODE_IMAGE || 'node:20-bookworm-slim';
const IMAGE = 'ufdl-agent:image-test';
const PREFIX = `ufdl-image-test-${process.pid}`;
const VOLUME = `${PREFIX}-data`;
// A re-created container may get another bridge address (any other container on the engine may
// have taken the old one); a node's identity is its address, so the node is pinned as OPERATIONS.md
// advises for containers that must stay the same node.
const STABLE_NODE = ['-e', 'UFDL_AGENT_NODE_IP=10.77.0.1'];
const PASSWORD = 'image-test-admin-password';
const containers: string[] = [];

/** Start a container (removed after the tests); returns its name. */
async function run(name: string, args: string[], command: string[]): Promise<string> {
  const full = `${PREFIX}-${name}`;
  containers.push(full);
  // The image's HEALTHCHECK command, probed every 2 s instead of every 30 s so that tests are quick.
  await docker(['run', '-d', '--name', full, '--health-interval', '2s', ...args, IMAGE, ...command]);
  return full;
}

async function waitHealthy(container: string, timeoutMs = 120_000): Promise<void> {
  let status = '';
  await until(
    async () => {
      status = await inspect(container, '{{.State.Health.Status}}');
      if (status === 'unhealthy' || (await inspect(container, '{{.State.Running}}')) !== 'true') {
        const logs = await docker(['logs', '--tail', '30', container]).catch((e: Error) => ({ stdout: e.message, stderr: '' }));
        throw new Error(`${container} is ${status}, running=${await inspect(container, '{{.State.Running}}')}:\n${logs.stdout}${logs.stderr}`);
      }
      return status === 'healthy';
    },
    timeoutMs,
    `${container} to become healthy`,
  );
}

/** `docker stop -t <grace>`: how long it took and the container's exit status. */
async function stop(container: string, graceS: number): Promise<{ ms: number; exitCode: number }> {
  const started = Date.now();
  await docker(['stop', '-t', String(graceS), container], { timeoutMs: (graceS + 30) * 1000 });
  return { ms: Date.now() - started, exitCode: Number(await inspect(container, '{{.State.ExitCode}}')) };
}

/** A {@link TestServer}-shaped handle on the server published by a container. */
async function serverAt(url: string, password: string): Promise<TestServer> {
  const login = async (username: string, pw: string) => {
    const res = await api(url, 'POST', '/v1/auth/obtain', { json: { username, password: pw } });
    if (res.status !== 200) throw new Error(`login at ${url}: ${res.status} ${res.text}`);
    return (res.body as { access: string }).access;
  };
  return { url, dataDir: '', adminToken: await login('admin', password), login, close: async () => {} };
}

async function templatePk(server: TestServer, name: string): Promise<number> {
  const res = await api(server.url, 'POST', '/v1/job-templates/list', { token: server.adminToken, json: {} });
  const found = (res.body as { pk: number; name: string }[]).find((t) => t.name === name);
  if (!found) throw new Error(`no template ${name} on ${server.url}: ${res.text}`);
  return found.pk;
}

const finishedOk = (job: ServerJob) => job.end_time !== null;

describe(`the image on a real Docker engine${dockerSkipNote}`, () => {
  beforeAll(async () => {
    if (skipDocker) return;
    requireDockerEngine();
    // Legacy builder: BuildKit is not available everywhere (and the Dockerfile does not need it).
    await docker(['build', '--build-arg', `NODE_IMAGE=${NODE_IMAGE}`, '-t', IMAGE, REPO], { timeoutMs: 20 * 60_000 });
  }, 20 * 60_000);

  afterAll(async () => {
    if (skipDocker) return;
    await removeAll(containers, [VOLUME]);
  });

  it.skipIf(skipDocker)('is built on the requested Node line and runs as the unprivileged user', async () => {
    const { stdout } = await docker(['run', '--rm', '--entrypoint', 'node', IMAGE, '-p', 'process.version + " " + process.getuid() + ":" + process.getgid()']);
    const [version, ids] = stdout.trim().split(' ');
    const wanted = /node:(\d+)/.exec(NODE_IMAGE)?.[1];
    if (wanted) expect(version).toMatch(new RegExp(`^v${wanted}\\.`));
    expect(ids).toBe('10001:10001');
  });

  describe('standalone', () => {
    let container = '';
    let server: TestServer;
    let jobPk = 0;
    let nodePk = 0;

    it.skipIf(skipDocker)('comes up healthy through its HEALTHCHECK, as a non-root process', async () => {
      container = await run('standalone', ['-p', '127.0.0.1::8000', '-v', `${VOLUME}:/var/lib/ufdl-agent`, '-e', `UFDL_ADMIN_PASSWORD=${PASSWORD}`,
        // The test machine's disk may be nearly full; the free-disk check is not what is tested here.
        '-e', 'UFDL_AGENT_MIN_FREE_DISK=0', ...STABLE_NODE], ['standalone']);
      await waitHealthy(container);
      // The health check asked both halves (`standalone`): the agent's status port and the server.
      const log = await inspect(container, '{{range .State.Health.Log}}{{.ExitCode}} {{end}}');
      expect(log.trim().split(' ').at(-1)).toBe('0');
      // The agent process (tini's child) runs as uid 10001, not root.
      const top = (await docker(['top', container, '-eo', 'uid,pid,args'])).stdout.split('\n');
      const agentLine = top.find((l) => l.includes('/app/dist/cli/main.js standalone'));
      expect(agentLine?.trim().split(/\s+/)[0]).toBe('10001');
      const port = (await docker(['port', container, '8000/tcp'])).stdout.trim().split('\n')[0]!.split(':').at(-1);
      server = await serverAt(`http://127.0.0.1:${port}`, PASSWORD);
    });

    it.skipIf(skipDocker)('runs a submitted job to the end', async () => {
      expect(server, 'the container did not start').toBeDefined();
      jobPk = await createJob(server, await templatePk(server, 'shell-hello'), { parameter_values: { name: { value: 'container', type: 'str' } } });
      const job = await waitForJob(server, jobPk, finishedOk, 60_000);
      expect(job.error_reason).toBeNull();
      expect(job.outputs.map((o) => o.name).sort()).toEqual(['greeting.txt', 'log']);
      nodePk = job.node!;
      expect((await downloadOutput(server, jobPk, 'greeting.txt')).toString()).toContain('container');
    });

    it.skipIf(skipDocker)('stops with status 0 on docker stop, well within the grace', async () => {
      expect(container, 'the container did not start').not.toBe('');
      const grace = 60;
      const { ms, exitCode } = await stop(container, grace);
      expect(exitCode).toBe(0);
      expect(ms).toBeLessThan(grace * 1000);
      const logs = await docker(['logs', container]);
      expect(`${logs.stdout}${logs.stderr}`).toContain('standalone stopped');
    });

    it.skipIf(skipDocker)('keeps its data on the volume: a new container continues with the same jobs and node', async () => {
      expect(jobPk, 'no job ran before').toBeGreaterThan(0);
      await docker(['rm', container]);
      const second = await run('standalone-again', ['-p', '127.0.0.1::8000', '-v', `${VOLUME}:/var/lib/ufdl-agent`, '-e', `UFDL_ADMIN_PASSWORD=${PASSWORD}`,
        '-e', 'UFDL_AGENT_MIN_FREE_DISK=0', ...STABLE_NODE], ['standalone']);
      await waitHealthy(second);
      const port = (await docker(['port', second, '8000/tcp'])).stdout.trim().split('\n')[0]!.split(':').at(-1);
      const again = await serverAt(`http://127.0.0.1:${port}`, PASSWORD);
      const old = await api(again.url, 'GET', `/v1/jobs/${jobPk}`, { token: again.adminToken });
      expect(old.status).toBe(200);
      expect((old.body as ServerJob).end_time).not.toBeNull();
      // The agent's journal is on the volume too: it found its node again instead of registering anew.
      const next = await createJob(again, await templatePk(again, 'shell-hello'));
      expect((await waitForJob(again, next, finishedOk, 60_000)).node).toBe(nodePk);
      expect((await stop(second, 60)).exitCode).toBe(0);
    });
  });

  it.skipIf(skipDocker)('`run` connects to a server outside the container and runs its job', async () => {
    const host = await startTestServer();
    const template = await importTemplate(host, 'shell-hello');
    const statusPort = await freePort();
    // Host networking: the server listens on the host's loopback, and nothing else is reachable here.
    const container = await run('run', ['--network', 'host',
      '-e', `UFDL_AGENT_SERVER_URL=${host.url}`, '-e', `UFDL_AGENT_SERVER_USERNAME=${ADMIN_USER}`,
      '-e', `UFDL_AGENT_SERVER_PASSWORD=${ADMIN_PASSWORD}`, '-e', `UFDL_AGENT_STATUS_PORT=${statusPort}`,
      '-e', 'UFDL_AGENT_POLL_INTERVAL=1', '-e', 'UFDL_AGENT_MIN_FREE_DISK=0', '-e', 'UFDL_AGENT_NODE_IP=127.0.0.42'], ['run']);
    await waitHealthy(container);
    const pk = await createJob(host, template);
    const job = await waitForJob(host, pk, finishedOk, 60_000);
    expect(job.error_reason).toBeNull();
    const node = await api(host.url, 'GET', `/v1/nodes/${job.node}`, { token: host.adminToken });
    expect((node.body as { ip: string }).ip).toBe('127.0.0.42');
    const { exitCode, ms } = await stop(container, 60);
    expect(exitCode).toBe(0);
    expect(ms).toBeLessThan(60_000);
  });
});
