/**
 * A host name to listen on (`serve.host`, `agent.status_host`) that the resolver cannot look up
 * just now (EAI_AGAIN: at boot, before DNS answers) stops the command with the temporary-failure
 * status (75, EX_TEMPFAIL), which systemd restarts, and one line saying the lookup failed for now;
 * a name that does not exist (ENOTFOUND) is a configuration error (78) naming the key. EAI_AGAIN was
 * an unexpected error (70, "a bug"). The resolver's answer is set by a preloaded module
 * (test/fixtures/dns-lookup-fails.cjs); everything else is the real command.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { buildOnce } from '../helpers/build.js';
import { freePort } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { cli, expectOneLineError, ROOT } from './commands-support.js';

const FAILING_RESOLVER = {
  NODE_OPTIONS: `--require ${join(ROOT, 'test', 'fixtures', 'dns-lookup-fails.cjs')}`,
  UFDL_TEST_DNS_FAILS: 'flaky.test=EAI_AGAIN,nowhere.test=ENOTFOUND',
};

describe('serve on a host name the resolver cannot look up', () => {
  it('exits 75 for a temporary failure, 78 naming serve.host for an unknown name', async () => {
    await buildOnce();
    const data = join(await tempDir('ufdl-serve-host-'), 'server');
    const port = String(await freePort());
    const flaky = await cli(['serve', '--data', data, '--port', port], { env: { ...FAILING_RESOLVER, UFDL_AGENT_SERVE_HOST: 'flaky.test' } });
    expectOneLineError(
      flaky,
      EXIT.TEMPFAIL,
      /^ufdl-agent: cannot listen on flaky\.test:\d+: the host name could not be looked up just now \(a temporary DNS failure\) \(host from UFDL_AGENT_SERVE_HOST\)/,
    );
    const unknown = await cli(['serve', '--data', data, '--port', port], { env: { ...FAILING_RESOLVER, UFDL_AGENT_SERVE_HOST: 'nowhere.test' } });
    expectOneLineError(unknown, EXIT.CONFIG, /^ufdl-agent: cannot listen on nowhere\.test:\d+: the host name is unknown \(host from UFDL_AGENT_SERVE_HOST\); choose another/);
  });
});

describe('the agent status endpoint on a host name the resolver cannot look up', () => {
  it('exits 75 for a temporary failure, 78 naming agent.status_host for an unknown name', async () => {
    await buildOnce();
    const dir = await tempDir('ufdl-status-host-');
    const env = { ...FAILING_RESOLVER, UFDL_AGENT_SERVER_URL: 'http://127.0.0.1:9', UFDL_AGENT_SERVER_PASSWORD: 'x', UFDL_AGENT_STATUS_PORT: '0', UFDL_AGENT_LOG_FORMAT: 'json' };
    const flaky = await cli(['run', '--work-dir', join(dir, 'work')], { env: { ...env, UFDL_AGENT_STATUS_HOST: 'flaky.test' } });
    expectOneLineError(
      flaky,
      EXIT.TEMPFAIL,
      /^ufdl-agent: the status endpoint cannot listen on flaky\.test:0: the host name could not be looked up just now \(a temporary DNS failure\); check agent\.status_host/,
    );
    // One log line, not a stack trace.
    const errors = flaky.stdout.split('\n').filter((line) => line.startsWith('{') && (JSON.parse(line) as { level: number }).level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/temporary DNS failure/);
    expect(errors[0]).not.toMatch(/"stack"/);
    const unknown = await cli(['run', '--work-dir', join(dir, 'work')], { env: { ...env, UFDL_AGENT_STATUS_HOST: 'nowhere.test' } });
    expectOneLineError(unknown, EXIT.CONFIG, /^ufdl-agent: the status endpoint cannot listen on nowhere\.test:0: the host name is unknown; check agent\.status_host/);
  });
});
