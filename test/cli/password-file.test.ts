/**
 * An agent whose password comes from `server.password_file` reads the file again at each login: a
 * password fixed there while the server refuses the old one is used at the next attempt, without a
 * restart (before, the agent kept the password it read at start until it was restarted).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentOptionsFrom } from '../../src/cli/agent-options.js';
import { loadConfig } from '../../src/cli/config/load.js';
import { fastAgentOptions, startingAgent, until } from '../helpers/agent.js';
import { api, freePort, startTestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('the agent\'s password file', () => {
  it('is read again at each login: a password fixed there is used without a restart', async () => {
    const server = await startTestServer();
    const created = await api(server.url, 'POST', '/v1/users/create', {
      token: server.adminToken,
      json: { username: 'robot', password: 'the-right-password', email: 'robot@example.com' },
    });
    expect([200, 201]).toContain(created.status);
    const dir = await tempDir('ufdl-password-file-');
    const file = join(dir, 'password');
    await writeFile(file, 'a-wrong-password\n', { mode: 0o600 });
    const config = loadConfig({ env: { UFDL_AGENT_SERVER_URL: server.url, UFDL_AGENT_SERVER_USERNAME: 'robot', UFDL_AGENT_SERVER_PASSWORD_FILE: file } });
    const fromFile = agentOptionsFrom(config).password;
    const port = await freePort();
    const { agent, starting, notReadyBecause: reasons } = await startingAgent(
      fastAgentOptions(server, dir, { username: 'robot', password: fromFile, status: { host: '127.0.0.1', port }, authRetryS: [0.2] }),
    );
    await until(async () => /refuses the credentials of user 'robot'/.test(await reasons()), 10_000, 'not ready for the credentials');

    // The operator fixes the file (an editor may leave it empty for a moment: the last password stays).
    await writeFile(file, '');
    await writeFile(file, 'the-right-password\n');
    await until(() => agent.state === 'running', 20_000, 'the agent to log in with the password fixed in its file');
    await starting;
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
  });

  it('is the value itself when the password is given directly', () => {
    const config = loadConfig({ env: { UFDL_AGENT_SERVER_URL: 'http://127.0.0.1:1', UFDL_AGENT_SERVER_PASSWORD: 'direct' } });
    expect(agentOptionsFrom(config).password).toBe('direct');
  });
});
