/**
 * A start-up step that the server refuses for good — registration answered 400 for a node field the
 * configuration gave (`agent.node_ip`), or 404 because `server.url` leads to something that lacks the
 * route — stops `ufdl-agent run` with the configuration status (78), which systemd does not restart,
 * one line on stderr and one in the log naming the server's message and what to check. Both exited
 * 70 ("a bug") with a stack trace, and systemd restarted the agent every 10 s. A server that answers
 * 5xx is still waited for, as an unreachable one is.
 */
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { buildOnce } from '../helpers/build.js';
import { answerJson, httpProxy } from '../helpers/http-proxy.js';
import { ADMIN_PASSWORD, ADMIN_USER, startTestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { cli, expectOneLineError, startCli } from './commands-support.js';

/** The environment of an agent of its own, against `url`. */
async function agentEnv(url: string, extra: Record<string, string> = {}): Promise<Record<string, string | undefined>> {
  const dir = await tempDir('ufdl-agent-refusal-');
  return {
    UFDL_AGENT_SERVER_URL: url,
    UFDL_AGENT_SERVER_USERNAME: ADMIN_USER,
    UFDL_AGENT_SERVER_PASSWORD: ADMIN_PASSWORD,
    UFDL_AGENT_WORK_DIR: join(dir, 'work'),
    UFDL_AGENT_STATUS_PORT: '-1',
    UFDL_AGENT_HARDWARE_INTERVAL: '0',
    UFDL_AGENT_LOG_FORMAT: 'json',
    ...extra,
  };
}

/** The agent's JSON log lines at level error (50) and above. */
function errorLines(stdout: string): { msg: string; err?: unknown; step?: string; status?: number; detail?: string }[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((line) => line.level >= 50);
}

/** A canned answer of the proxy: a status with a JSON `detail`, or a whole answer. */
type Canned = number | { status: number; contentType: string; body: string };

/**
 * A proxy in front of `target` that answers requests for which `answer` returns a canned answer
 * itself, and passes the others on.
 */
function proxy(target: string, answer: (req: IncomingMessage) => Canned | undefined): Promise<string> {
  return httpProxy(target, {
    answer: (req, res) => {
      const canned = answer(req);
      if (canned === undefined) return false;
      if (typeof canned === 'number') return answerJson(res, canned, canned === 404 ? 'Not found.' : 'Service unavailable');
      res.writeHead(canned.status, { 'content-type': canned.contentType }).end(canned.body);
      return true;
    },
  });
}

/** Answers `canned` to the first `times` requests for the node routes, then passes them on. */
function firstNodeCalls(times: number, canned: Canned): (req: IncomingMessage) => Canned | undefined {
  let left = times;
  return (req) => {
    if (!req.url?.startsWith('/v1/nodes/') || left === 0) return undefined;
    left--;
    return canned;
  };
}

describe('a start-up step the server refuses for good', () => {
  it('a node field the server refuses at registration stops run with the configuration status, naming the field and the keys', async () => {
    await buildOnce();
    const server = await startTestServer();
    // The embedded server (as the reference's model) takes an ip of at most 39 characters.
    const result = await cli(['run'], { env: await agentEnv(server.url, { UFDL_AGENT_NODE_IP: 'x'.repeat(40) }) });
    expectOneLineError(
      result,
      EXIT.CONFIG,
      /^ufdl-agent: the server refuses to register this node: POST \/v1\/nodes\/create: 400: ip: Ensure this field has no more than 39 characters\.; check agent\.node_ip and agent\.node_index/,
    );
    const errors = errorLines(result.stdout);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ step: 'registration', status: 400, detail: 'ip: Ensure this field has no more than 39 characters.' });
    expect(errors[0]!.msg).toMatch(/check agent\.node_ip/);
    // One line, not a stack trace.
    expect(errors[0]!.err).toBeUndefined();
  });

  it('a route that server.url lacks (404) stops run with the configuration status, naming server.url', async () => {
    await buildOnce();
    const server = await startTestServer();
    const url = await proxy(server.url, (req) => (req.url?.startsWith('/v1/nodes/') ? 404 : undefined));
    const result = await cli(['run'], { env: await agentEnv(url) });
    expectOneLineError(result, EXIT.CONFIG, /^ufdl-agent: the server refuses to register this node: POST \/v1\/nodes\/list: 404: Not found\.; check server\.url/);
    const errors = errorLines(result.stdout);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ step: 'registration', status: 404 });
  });

  it('a server that answers 5xx is waited for: the agent keeps trying, and starts once it answers', async () => {
    await buildOnce();
    const server = await startTestServer();
    let unavailable = true;
    const url = await proxy(server.url, (req) => (unavailable && req.url?.startsWith('/v1/nodes/') ? 503 : undefined));
    const agent = startCli(['run'], { env: await agentEnv(url, { UFDL_AGENT_ERROR_BACKOFF: '0.2' }), timeoutMs: 60_000 });
    await agent.stdoutMatches(/"step":"registration".*"msg":"start-up step failed; retrying"/);
    unavailable = false;
    await agent.stdoutMatches(/"msg":"agent running"/);
    agent.child.kill('SIGTERM');
    expect((await agent.result).code).toBe(EXIT.OK);
  });

  it('an answer that is not the API\'s (an HTML page from a proxy) stops run with the configuration status, naming server.url', async () => {
    await buildOnce();
    const server = await startTestServer();
    const url = await proxy(server.url, (req) =>
      req.url?.startsWith('/v1/nodes/') ? { status: 200, contentType: 'text/html', body: '<html><body>Welcome to the portal</body></html>' } : undefined,
    );
    const result = await cli(['run'], { env: await agentEnv(url) });
    expectOneLineError(result, EXIT.CONFIG, /^ufdl-agent: the server refuses to register this node: .*; check server\.url/);
    const errors = errorLines(result.stdout);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ step: 'registration', status: 200 });
    expect(errors[0]!.err).toBeUndefined();
  });

  it('a 408 (a proxy gave up waiting for the request) is waited out, not taken for a refusal', async () => {
    await buildOnce();
    const server = await startTestServer();
    const url = await proxy(server.url, firstNodeCalls(3, { status: 408, contentType: 'application/json', body: '{"detail":"Request Timeout"}' }));
    const agent = startCli(['run'], { env: await agentEnv(url, { UFDL_AGENT_ERROR_BACKOFF: '0.2' }), timeoutMs: 60_000 });
    await agent.stdoutMatches(/"msg":"agent running"/);
    agent.child.kill('SIGTERM');
    expect((await agent.result).code).toBe(EXIT.OK);
  });

  it('a 400 Bad Node-Id during start-up (the node deleted under the step) is waited out, not a crash', async () => {
    await buildOnce();
    const server = await startTestServer();
    // The server's words for a Node-Id it does not know (the client tells it by them).
    const badNodeId = { status: 400, contentType: 'application/json', body: JSON.stringify({ detail: "Bad Node-Id header '7': No node with this primary-key" }) };
    const url = await proxy(server.url, firstNodeCalls(1, badNodeId));
    const agent = startCli(['run'], { env: await agentEnv(url, { UFDL_AGENT_ERROR_BACKOFF: '0.2' }), timeoutMs: 60_000 });
    await agent.stdoutMatches(/"step":"registration".*"msg":"start-up step failed; retrying"/);
    await agent.stdoutMatches(/"msg":"agent running"/);
    agent.child.kill('SIGTERM');
    expect((await agent.result).code).toBe(EXIT.OK);
  });
});
