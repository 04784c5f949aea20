/**
 * An agent whose user the server will not let act as a node (`serve.node_actions = "workers"` and a
 * user that is no worker account: docs/OPERATIONS.md, "Authentication fails") stops at start-up with
 * one line saying so and the permission status (77), as the operator commands do. It was an
 * unexpected error (70, "a bug") with a stack trace in the log.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { buildOnce } from '../helpers/build.js';
import { api, startTestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { cli, expectOneLineError } from './commands-support.js';

describe('an agent whose user may not act as a node', () => {
  it('stops run with the permission status, saying what the server refused', async () => {
    await buildOnce();
    const server = await startTestServer({ nodeActions: 'workers' });
    const created = await api(server.url, 'POST', '/v1/users/create', {
      token: server.adminToken,
      json: { username: 'erin', password: 'erin-password' },
    });
    expect(created.status, created.text).toBeLessThan(300);
    const dir = await tempDir('ufdl-agent-refused-');
    const result = await cli(['run', '--work-dir', join(dir, 'work')], {
      env: {
        UFDL_AGENT_SERVER_URL: server.url,
        UFDL_AGENT_SERVER_USERNAME: 'erin',
        UFDL_AGENT_SERVER_PASSWORD: 'erin-password',
        UFDL_AGENT_STATUS_PORT: '-1',
        UFDL_AGENT_HARDWARE_INTERVAL: '0',
      },
    });
    expectOneLineError(result, EXIT.NOPERM, /^ufdl-agent: the server refuses the agent's user: POST \/v1\/nodes\/create: 403: User 'erin' is not a worker account/);
  });
});
