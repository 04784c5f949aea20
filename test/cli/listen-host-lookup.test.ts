/**
 * A host name to listen on (`serve.host`, `agent.status_host`) that the resolver cannot look up just
 * now (EAI_AGAIN: at boot, before DNS answers). Before, the command exited with the temporary-failure
 * status (75) for systemd to start it again; systemd restarts 10 s apart and gives up after 5 starts
 * in 10 minutes, so a resolver down for more than about a minute left the node down for good. Now the
 * command waits in-process, saying so, and listens once the name resolves; a stop signal during the
 * wait ends it at once with status 0. (Giving up after the bound, with 75, is tested on the wait
 * itself: test/host-lookup-wait.test.ts.) A name that does not exist (ENOTFOUND) is still a
 * configuration error (78) naming the key, at once. The resolver's answers are set by a preloaded
 * module (test/fixtures/dns-lookup-fails.cjs: `name=EAI_AGAIN*N` fails the first N lookups, then
 * answers 127.0.0.1); everything else is the real command.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { buildOnce } from '../helpers/build.js';
import { freePort } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { cli, expectOneLineError, ROOT, startCli } from './commands-support.js';

const PRELOAD = { NODE_OPTIONS: `--require ${join(ROOT, 'test', 'fixtures', 'dns-lookup-fails.cjs')}`, UFDL_AGENT_LOG_FORMAT: 'json' };

/** The resolver fails `flaky.test` with EAI_AGAIN (`times` lookups, or always) and `nowhere.test` with ENOTFOUND. */
function resolver(times?: number): Record<string, string> {
  return { ...PRELOAD, UFDL_TEST_DNS_FAILS: `flaky.test=EAI_AGAIN${times === undefined ? '' : `*${times}`},nowhere.test=ENOTFOUND` };
}

const WAITING = /cannot look up flaky\.test just now \(getaddrinfo EAI_AGAIN flaky\.test\); trying again in \d+ s, for up to 10 min before exiting/;

describe('serve on a host name the resolver cannot look up', () => {
  it('waits for the resolver, then listens', async () => {
    await buildOnce();
    const data = join(await tempDir('ufdl-serve-host-'), 'server');
    const port = await freePort();
    const serve = startCli(['serve', '--data', data, '--port', String(port)], { env: { ...resolver(2), UFDL_AGENT_SERVE_HOST: 'flaky.test' }, timeoutMs: 60_000 });
    await serve.stdoutMatches(new RegExp(`"msg":"the server ${WAITING.source}"`));
    await serve.stdoutMatches(new RegExp(`ufdl server listening on http://flaky\\.test:${port}`));
    expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
    serve.child.kill('SIGTERM');
    const result = await serve.result;
    expect(result.code, result.stderr).toBe(0);
  });

  it('stops at once, status 0 and nothing created, when signalled while it waits', async () => {
    await buildOnce();
    const data = join(await tempDir('ufdl-serve-host-'), 'server');
    const serve = startCli(['serve', '--data', data, '--port', String(await freePort())], { env: { ...resolver(), UFDL_AGENT_SERVE_HOST: 'flaky.test' } });
    await serve.stdoutMatches(WAITING);
    serve.child.kill('SIGTERM');
    const result = await serve.result;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/"msg":"stopped while starting"/);
    expect(existsSync(data)).toBe(false);
  });

  it('exits 78 naming serve.host, at once, for a name that does not exist', async () => {
    await buildOnce();
    const data = join(await tempDir('ufdl-serve-host-'), 'server');
    const unknown = await cli(['serve', '--data', data, '--port', String(await freePort())], { env: { ...resolver(), UFDL_AGENT_SERVE_HOST: 'nowhere.test' } });
    expectOneLineError(unknown, EXIT.CONFIG, /^ufdl-agent: cannot listen on nowhere\.test:\d+: the host name is unknown \(host from UFDL_AGENT_SERVE_HOST\); choose another/);
  });
});

describe('standalone on a host name the resolver cannot look up', () => {
  // Before, standalone had no stop handler while its server waited for the resolver: SIGTERM ended
  // the process outright (killed by the signal, no log line) instead of stopping it as `serve` stops.
  it('stops at once, status 0 with a log line and nothing created, when signalled while it waits', async () => {
    await buildOnce();
    const data = join(await tempDir('ufdl-standalone-host-'), 'data');
    const standalone = startCli(['standalone', '--data', data, '--port', String(await freePort())], {
      env: { ...resolver(), UFDL_AGENT_SERVE_HOST: 'flaky.test', UFDL_AGENT_STATUS_PORT: '-1' },
    });
    await standalone.stdoutMatches(new RegExp(`"msg":"the server ${WAITING.source}"`));
    standalone.child.kill('SIGTERM');
    const result = await standalone.result;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/"msg":"stopped while starting"/);
    expect(existsSync(data)).toBe(false);
  });
});

describe('the agent status endpoint on a host name the resolver cannot look up', () => {
  const agentEnv = { UFDL_AGENT_SERVER_URL: 'http://127.0.0.1:9', UFDL_AGENT_SERVER_PASSWORD: 'x', UFDL_AGENT_STATUS_PORT: '0' };

  it('waits for the resolver, then listens', async () => {
    await buildOnce();
    const dir = await tempDir('ufdl-status-host-');
    const run = startCli(['run', '--work-dir', join(dir, 'work')], { env: { ...resolver(2), ...agentEnv, UFDL_AGENT_STATUS_HOST: 'flaky.test' }, timeoutMs: 60_000 });
    await run.stdoutMatches(new RegExp(`"msg":"the status endpoint ${WAITING.source}"`));
    // The server (port 9) never answers: the agent waits for it, its status endpoint up.
    await run.stdoutMatches(/"status":"http:\/\/flaky\.test:\d+".*"msg":"agent starting"/);
    const port = /"status":"http:\/\/flaky\.test:(\d+)"/.exec(run.stdout())![1];
    expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
    run.child.kill('SIGTERM');
    const result = await run.result;
    expect(result.code, result.stderr).toBe(0);
  });

  it('stops at once with status 0 when signalled while it waits', async () => {
    await buildOnce();
    const dir = await tempDir('ufdl-status-host-');
    const run = startCli(['run', '--work-dir', join(dir, 'work')], { env: { ...resolver(), ...agentEnv, UFDL_AGENT_STATUS_HOST: 'flaky.test' } });
    await run.stdoutMatches(WAITING);
    run.child.kill('SIGTERM');
    const result = await run.result;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    // One stop, no error: not a failed start.
    const errors = result.stdout.split('\n').filter((line) => line.startsWith('{') && (JSON.parse(line) as { level: number }).level >= 50);
    expect(errors).toEqual([]);
  });

  it('exits 78 naming agent.status_host, at once, for a name that does not exist', async () => {
    await buildOnce();
    const dir = await tempDir('ufdl-status-host-');
    const unknown = await cli(['run', '--work-dir', join(dir, 'work')], { env: { ...resolver(), ...agentEnv, UFDL_AGENT_STATUS_HOST: 'nowhere.test' } });
    expectOneLineError(unknown, EXIT.CONFIG, /^ufdl-agent: the status endpoint cannot listen on nowhere\.test:0: the host name is unknown; check agent\.status_host/);
    // One log line, not a stack trace.
    const errors = unknown.stdout.split('\n').filter((line) => line.startsWith('{') && (JSON.parse(line) as { level: number }).level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).not.toMatch(/"stack"/);
  });
});
