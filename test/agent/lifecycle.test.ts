/**
 * The Agent's lifecycle and operations surface: states step by step, the status endpoint, a second
 * agent on the same journal, credentials refused at start (not ready, no crash), and re-registration
 * after the server forgot the node (400 Bad Node-Id).
 */
import { describe, expect, it } from 'vitest';
import { startAgent, type AgentState } from '../../src/agent/index.js';
import { IllegalStateError } from '../../src/agent/lifecycle.js';
import { JournalLockedError } from '../../src/agent/journal/errors.js';
import { api, freePort, startTestServer } from '../helpers/server.js';
import {
  createJob,
  ended,
  fastAgentOptions,
  importTemplate,
  recordingLogger,
  shellTemplate,
  startingAgent,
  startTestAgent,
  testLogger,
  until,
  waitForJob,
} from '../helpers/agent.js';
import { tempDir } from '../helpers/temp-dir.js';


describe('Agent lifecycle', () => {
  it('goes starting → running → draining → stopping → stopped, emitting each step and closed last', async () => {
    const server = await startTestServer();
    const { agent } = await startTestAgent(server);
    const seen: AgentState[] = [agent.state];
    const events: string[] = [];
    agent.on('state', ({ to }) => seen.push(to));
    for (const name of ['drained', 'closing', 'closed'] as const) agent.on(name, () => events.push(name));
    expect(agent.state).toBe('running');
    agent.drain('test');
    await agent.whenStopped();
    expect(seen).toEqual(['running', 'draining', 'stopping', 'stopped']);
    expect(events).toEqual(['drained', 'closing', 'closed']);
    // close() is idempotent.
    await agent.close();
    await agent.close();
    expect(agent.state).toBe('stopped');
  });

  it('refuses an illegal transition, naming the current state', async () => {
    const server = await startTestServer();
    const { agent } = await startTestAgent(server);
    expect(() => agent.transition('starting')).toThrow(IllegalStateError);
    expect(() => agent.transition('starting')).toThrow(/while running/);
  });

  it('serves /livez, /readyz, /status.json and /metrics on loopback', async () => {
    const server = await startTestServer();
    const { agent } = await startTestAgent(server);
    const template = await importTemplate(server, shellTemplate('status', 'echo hi\n'));
    await waitForJob(server, await createJob(server, template), ended);
    await until(() => agent.getStatus().jobs.length === 0, 5000, 'the job to leave');
    const base = agent.statusUrl!;
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${base}/livez`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    const status = (await (await fetch(`${base}/status.json`)).json()) as Record<string, any>;
    expect(status).toMatchObject({ state: 'running', ready: true, serverUrl: server.url, capabilities: { wakeup: true, websocketAuth: true } });
    expect(status.slots).toHaveLength(1);
    expect(status.slots[0].nodePk).toBeGreaterThan(0);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/ufdl_agent_jobs_acquired_total 1/);
    expect(metrics).toMatch(/ufdl_agent_jobs_ended_total\{outcome="success"\} 1/);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/status.json`, { method: 'POST' })).status).toBe(405);
  });

  it('refuses a second agent on the same journal and leaves the first one running', async () => {
    const server = await startTestServer();
    const first = await startTestAgent(server);
    const other = await tempDir('ufdl-second-');
    const options = fastAgentOptions(server, other, { journalFile: first.options.journalFile, nodeIndex: 1 });
    await expect(startAgent(options, testLogger(), { handleSignals: false })).rejects.toBeInstanceOf(JournalLockedError);
    expect(first.agent.state).toBe('running');
    const template = await importTemplate(server, shellTemplate('still-works', 'echo ok\n'));
    expect((await waitForJob(server, await createJob(server, template), ended)).error_reason).toBeNull();
  });

  it('is not ready while the server refuses its credentials, re-checks, and starts once they work', async () => {
    const server = await startTestServer();
    const port = await freePort();
    const dir = await tempDir('ufdl-auth-');
    const options = fastAgentOptions(server, dir, { username: 'robot', password: 'robot-password', status: { host: '127.0.0.1', port }, authRetryS: [0.2] });
    const { agent, starting: start, notReadyBecause: reasons } = await startingAgent(options);
    let started = false;
    const starting = start.then(() => (started = true));
    await until(async () => /refuses the credentials of user 'robot'/.test(await reasons()), 10_000, 'not ready for the credentials');
    expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
    // Still trying, not crashed; then the user appears.
    await new Promise((r) => setTimeout(r, 500));
    expect(started).toBe(false);
    expect(agent.state).toBe('starting');
    const created = await api(server.url, 'POST', '/v1/users/create', {
      token: server.adminToken,
      json: { username: 'robot', password: 'robot-password', email: 'robot@example.com' },
    });
    expect([200, 201]).toContain(created.status);
    await starting;
    expect(agent.state).toBe('running');
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
  });

  it('is not ready, and says to check server.url, while the server answers its login with a 404 (a wrong path)', async () => {
    const server = await startTestServer();
    const port = await freePort();
    const dir = await tempDir('ufdl-wrong-path-');
    const { logger, lines } = recordingLogger();
    const { agent, notReadyBecause: reasons } = await startingAgent(fastAgentOptions({ url: `${server.url}/wrong/` }, dir, { status: { host: '127.0.0.1', port } }), logger);
    await until(async () => /answers the login with 404: is server.url \(.*\/wrong\/?\) the UFDL server's address\?/.test(await reasons()), 10_000, 'not ready for the address');
    // Before, it was logged as an unreachable server (a warning), which it is not.
    expect(lines.some((l) => /check server\.url/.test(String(l.msg)) && l.level === 50)).toBe(true);
    expect(lines.some((l) => /unreachable/.test(String(l.msg)))).toBe(false);
    expect(agent.state).toBe('starting');
  });

  it('registers again when the server no longer knows its node (400 Bad Node-Id)', async () => {
    const server = await startTestServer();
    const { agent } = await startTestAgent(server);
    const before = agent.getStatus().slots[0]!.nodePk!;
    const removed = await api(server.url, 'DELETE', `/v1/nodes/${before}`, { token: server.adminToken });
    expect(removed.status).toBe(204);
    await until(() => (agent.getStatus().slots[0]!.nodePk ?? before) !== before, 15_000, 'a new registration');
    const template = await importTemplate(server, shellTemplate('after-reregister', 'echo ok\n'));
    const job = await waitForJob(server, await createJob(server, template), ended);
    expect(job.error_reason).toBeNull();
    expect(job.node).toBe(agent.getStatus().slots[0]!.nodePk);
  });
});
