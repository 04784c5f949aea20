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
