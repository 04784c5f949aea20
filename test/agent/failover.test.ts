/**
 * An agent given several addresses of one server — replicas sharing one database, real `serve`
 * processes — whose replica is SIGKILLed while a job runs: the agent carries on through another, and
 * the job runs once, finishes once, with every output. And the same kill behind one load-balancer
 * address: the agent sees one address, as it always did, and the job ends the same way.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  createJob,
  downloadOutput,
  ended,
  importTemplate,
  readRuns,
  recordingLogger,
  shellTemplate,
  startTestAgent,
  until,
  waitForJob,
} from '../helpers/agent.js';
import { startReplicas } from '../helpers/replicas.js';
import { api, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

/** The expected `model.bin`: what `seq 1 20000` prints. */
const MODEL = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join('');

/**
 * A job that records each run, reports progress until the gate file appears (so the kill lands
 * while it runs and talks to the server), then writes two outputs.
 */
async function gatedJob(server: TestServer, name: string): Promise<{ template: number; runs: string; gate: string }> {
  const dir = await tempDir('ufdl-failover-');
  const runs = join(dir, 'runs');
  const gate = join(dir, 'gate');
  const script = [
    `echo run >> '${runs}'`,
    `while [ ! -f '${gate}' ]; do echo "UFDL-PROGRESS 0.5"; sleep 0.1; done`,
    'echo "UFDL-PROGRESS 0.9"',
    'echo survived > "$UFDL_OUTPUT_DIR/result.txt"',
    'seq 1 20000 > "$UFDL_OUTPUT_DIR/model.bin"',
  ].join('\n');
  return { template: await importTemplate(server, shellTemplate(name, script)), runs, gate };
}

async function expectFinishedOnce(server: TestServer, pk: number, runs: string): Promise<void> {
  const job = await waitForJob(server, pk, ended, 90_000);
  expect(job.error_reason).toBeNull();
  expect(job.is_cancelled).toBe(false);
  // Every output once: a repeated upload would show twice or have failed the job.
  expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'model.bin', 'result.txt']);
  expect((await downloadOutput(server, pk, 'model.bin')).toString()).toBe(MODEL);
  expect((await downloadOutput(server, pk, 'result.txt')).toString()).toBe('survived\n');
  expect(await readRuns(runs)).toEqual(['run']);
}

describe('failing over between server replicas', () => {
  it('carries a running job through the SIGKILL of the replica it talks to, to another: once, with every output', async () => {
    const { replicas } = await startReplicas(2);
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const { template, runs, gate } = await gatedJob(a.server, 'failover-kill');
    const { logger, lines } = recordingLogger();
    const { agent } = await startTestAgent(a.server, { serverUrl: [a.url, b.url], failbackAfterMs: 600_000 }, undefined, logger);
    let finished = 0;
    agent.on('finished', () => finished++);
    const pk = await createJob(a.server, template);
    await until(() => agent.getStatus().jobs.some((j) => j.jobPk === pk && j.pid !== null), 90_000, 'the child to run');
    expect(agent.getStatus().serverUrl).toBe(a.url);

    await a.kill();
    await until(() => agent.getStatus().serverUrl === b.url, 90_000, 'the agent to move to the second replica');
    await writeFile(gate, '');

    await expectFinishedOnce(b.server, pk, runs);
    await until(() => finished === 1 && agent.getStatus().jobs.length === 0, 90_000, 'the agent to be done with the job');
    const status = agent.getStatus();
    expect(status.servers).toMatchObject({ current: `${b.url}/`, switches: 1 });
    expect(status.servers!.addresses.map((s) => [s.url, s.current])).toEqual([[`${a.url}/`, false], [`${b.url}/`, true]]);
    // The status endpoint and the metrics say which address is in use.
    const served = (await (await fetch(`${agent.statusUrl}/status.json`)).json()) as { serverUrl: string; servers: { switches: number } };
    expect(served).toMatchObject({ serverUrl: b.url, servers: { switches: 1 } });
    const metrics = await (await fetch(`${agent.statusUrl}/metrics`)).text();
    expect(metrics).toContain(`ufdl_agent_server_address{url="${a.url}"} 0`);
    expect(metrics).toContain(`ufdl_agent_server_address{url="${b.url}"} 1`);
    expect(metrics).toMatch(/^ufdl_agent_server_switches_total 1$/m);
    // One line for the switch, naming both addresses and why.
    const switches = lines.filter((l) => l.msg === 'server address failed; switching to the next');
    expect(switches).toHaveLength(1);
    expect(switches[0]).toMatchObject({ from: `${a.url}/`, to: `${b.url}/` });
    // The login of the first replica was good on the second: they share the token secret.
    expect(lines.filter((l) => l.msg === 'logged in')).toHaveLength(1);
    // Nothing stuck on the server, and the agent takes the next job through the replica it now uses.
    const next = await createJob(b.server, template);
    await writeFile(gate, '');
    const nextJob = await waitForJob(b.server, next, ended, 60_000);
    expect(nextJob.error_reason).toBeNull();
    await until(() => finished === 2, 90_000, 'the agent to report the next job finished');
  }, 300_000);

  it('does not finish twice when the replica dies after committing a finish and before answering it', async () => {
    // The replica dies inside the finish of a workflow's first child, its commit made, no answer sent.
    const { replicas } = await startReplicas(2, [{ UFDL_SERVER_FAIL_POINTS: 'workflow:successors-committed' }]);
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    for (const name of ['train-epochs', 'predict']) await importTemplate(a.server, name);
    const workflow = await importTemplate(a.server, 'train-then-predict');
    const { logger, lines } = recordingLogger();
    const { agent } = await startTestAgent(a.server, { serverUrl: [a.url, b.url] }, undefined, logger);
    let finished = 0;
    agent.on('finished', () => finished++);
    const parent = await createJob(a.server, workflow, { parameter_values: { 'train:epoch_seconds': { value: 0.05, type: 'float' } } });

    expect((await a.exited).signal).toBe('SIGKILL');
    expect(a.stderr()).toContain('fail point workflow:successors-committed');
    const done = await waitForJob(b.server, parent, ended, 90_000);
    expect(done.error_reason).toBeNull();
    const children = await api(b.url, 'POST', '/v1/jobs/list', {
      token: b.server.adminToken,
      json: { expressions: [{ type: 'exact', field: 'parent', value: parent }], include_inactive: true },
    });
    const rows = children.body as { description: string; end_time: string | null; error_reason: string | null }[];
    // The successor exactly once, both children finished without error: the finish that landed on
    // the dead replica was recognised through the other one, not sent as a second finish.
    expect(rows.map((job) => /^child job '([^']+)'/.exec(job.description)![1])).toEqual(['train', 'predict']);
    expect(rows.every((job) => job.end_time !== null && job.error_reason === null)).toBe(true);
    await until(() => finished === 2, 90_000, 'both children reported finished by the agent');
    expect(agent.getStatus().serverUrl).toBe(b.url);
    expect(lines.filter((l) => l.msg === 'server address failed; switching to the next')).toHaveLength(1);
  }, 300_000);

  it('behind one load-balancer address, sees one server and finishes the job the same way', async () => {
    const { replicas } = await startReplicas(2);
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const balancer = await startBalancer([a.url, b.url]);
    const front: TestServer = { ...a.server, url: balancer.url };
    const { template, runs, gate } = await gatedJob(front, 'failover-balancer');
    const { agent } = await startTestAgent(front, { errorBackoffS: [0.2, 0.5] });
    const pk = await createJob(front, template);
    await until(() => agent.getStatus().jobs.some((j) => j.jobPk === pk && j.pid !== null), 90_000, 'the child to run');

    await a.kill();
    await writeFile(gate, '');
    await expectFinishedOnce(b.server, pk, runs);
    expect(agent.getStatus().servers).toMatchObject({ current: `${balancer.url}/`, switches: 0 });
    expect(agent.getStatus().servers!.addresses).toHaveLength(1);
  }, 300_000);
});

/**
 * The least a TCP load balancer does: each new connection goes to the first backend that accepts
 * it. Connections already open to a backend that dies die with it, as they would behind a real one.
 */
async function startBalancer(backends: string[]): Promise<{ url: string }> {
  const targets = backends.map((u) => new URL(u));
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.pause();
    const tryBackend = (i: number) => {
      if (i >= targets.length) return void client.destroy();
      const upstream = connect(Number(targets[i]!.port), targets[i]!.hostname);
      let connected = false;
      upstream.once('error', () => {
        if (!connected) tryBackend(i + 1);
        else client.destroy();
      });
      upstream.once('connect', () => {
        connected = true;
        sockets.add(upstream);
        upstream.on('close', () => sockets.delete(upstream));
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        client.pipe(upstream).pipe(client);
        client.resume();
      });
    };
    tryBackend(0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}` };
}
