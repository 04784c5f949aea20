/**
 * An agent whose status port another process holds (a second agent on the machine with the same
 * `agent.status_port`: docs/OPERATIONS.md, "Other problems") stops with one line naming the key, and
 * the configuration status (78), which systemd does not restart, as `serve` does for its own port.
 * It was an unexpected error (70) with a stack trace in the log, restarted every 10 s.
 */
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it, onTestFinished } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { buildOnce } from '../helpers/build.js';
import { tempDir } from '../helpers/temp-dir.js';
import { cli, expectOneLineError } from './commands-support.js';

describe('the agent status port', () => {
  it('taken by another process stops run with the configuration status, naming agent.status_port', async () => {
    await buildOnce();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    const { port } = holder.address() as AddressInfo;
    const dir = await tempDir('ufdl-status-port-');
    const result = await cli(['run', '--work-dir', join(dir, 'work')], {
      env: { UFDL_AGENT_SERVER_URL: 'http://127.0.0.1:9', UFDL_AGENT_SERVER_PASSWORD: 'x', UFDL_AGENT_STATUS_PORT: String(port) },
    });
    expectOneLineError(
      result,
      EXIT.CONFIG,
      new RegExp(`^ufdl-agent: the status endpoint cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use \\(another agent\\?\\); choose another agent\\.status_port`),
    );
  });
});

describe('the agent status endpoint, configured where it cannot listen', () => {
  it('a port out of range or an address not of this machine stops run with the configuration status, naming the key', async () => {
    await buildOnce();
    const dir = await tempDir('ufdl-status-port-');
    const env = { UFDL_AGENT_SERVER_URL: 'http://127.0.0.1:9', UFDL_AGENT_SERVER_PASSWORD: 'x' };
    const range = await cli(['run', '--work-dir', join(dir, 'work')], { env: { ...env, UFDL_AGENT_STATUS_PORT: '70000' } });
    expectOneLineError(range, EXIT.CONFIG, /Configuration key 'agent\.status_port' from env UFDL_AGENT_STATUS_PORT: must have a port in \[0, 65535\]/);
    // 192.0.2.1 (TEST-NET-1) is no address of this machine.
    const host = await cli(['run', '--work-dir', join(dir, 'work')], { env: { ...env, UFDL_AGENT_STATUS_HOST: '192.0.2.1', UFDL_AGENT_STATUS_PORT: '0' } });
    expectOneLineError(host, EXIT.CONFIG, /the status endpoint cannot listen on 192\.0\.2\.1:0: the address is not an address of this machine; check agent\.status_host/);
  });
});
