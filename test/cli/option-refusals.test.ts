/**
 * A value the configuration loader takes but the agent or the server refuses (a negative
 * `agent.slots`, `serve.lost_after = 0`, a port above 65535) stops the command as every bad value
 * does (README, "Configuration"): one line naming the key and where its value came from, exit status
 * 78, which systemd does not restart. The server's refusals were an "unexpected error" (70) naming an
 * internal option (`lostAfterSeconds`), which systemd restarted until its start limit.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { KEYS, keyId } from '../../src/cli/config/keys.js';
import { AGENT_OPTION_KEYS, SERVER_OPTION_KEYS } from '../../src/cli/config/option-keys.js';
import { buildOnce } from '../helpers/build.js';
import { freePort } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { cli, expectOneLineError } from './commands-support.js';

describe('options refused after loading', () => {
  it('name only configuration keys that exist', () => {
    const known = new Set(KEYS.map(keyId));
    for (const key of [...Object.values(AGENT_OPTION_KEYS), ...Object.values(SERVER_OPTION_KEYS)]) expect(known, key).toContain(key);
  });

  it('stop serve with the configuration status, naming the key and its source', async () => {
    await buildOnce();
    const data = join(await tempDir('ufdl-refusal-'), 'server');
    const port = String(await freePort());
    const fromEnv = await cli(['serve', '--data', data, '--port', port], { env: { UFDL_AGENT_SERVE_LOST_AFTER: '0' } });
    expectOneLineError(fromEnv, EXIT.CONFIG, /configuration error: Configuration key 'serve\.lost_after' from env UFDL_AGENT_SERVE_LOST_AFTER: must be a positive number, got 0/);
    const fromFlag = await cli(['serve', '--data', data, '--port', '70000']);
    expectOneLineError(fromFlag, EXIT.CONFIG, /Configuration key 'serve\.port' from flag: must be an integer in \[0, 65535\], got 70000/);
    const negative = await cli(['serve', '--data', data, '--port', port], { env: { UFDL_AGENT_SERVE_MAX_OUTPUT_BYTES: '-1' } });
    expectOneLineError(negative, EXIT.CONFIG, /Configuration key 'serve\.max_output_bytes' from env UFDL_AGENT_SERVE_MAX_OUTPUT_BYTES: must be a positive number/);
    // Refused before anything is created.
    expect(existsSync(data)).toBe(false);
  });

  it('stop standalone and run the same way', async () => {
    await buildOnce();
    const dir = await tempDir('ufdl-refusal-');
    const standalone = await cli(['standalone', '--data', join(dir, 'data'), '--port', String(await freePort())], {
      env: { UFDL_AGENT_SERVE_IDLE_TIMEOUT: '0' },
    });
    expectOneLineError(standalone, EXIT.CONFIG, /Configuration key 'serve\.idle_timeout' from env UFDL_AGENT_SERVE_IDLE_TIMEOUT: must be a positive number/);
    const run = await cli(['run', '--work-dir', join(dir, 'work')], { env: { UFDL_AGENT_SERVER_PASSWORD: 'x', UFDL_AGENT_SLOTS: '-1' } });
    expectOneLineError(run, EXIT.CONFIG, /Configuration key 'agent\.slots' from env UFDL_AGENT_SLOTS: must be a non-negative number, got -1/);
    const logs = await cli(['run', '--work-dir', join(dir, 'work')], { env: { UFDL_AGENT_SERVER_PASSWORD: 'x', UFDL_AGENT_LOGS_MAX_BYTES: '10' } });
    expectOneLineError(logs, EXIT.CONFIG, /Configuration key 'logs\.max_bytes' from env UFDL_AGENT_LOGS_MAX_BYTES: must be an integer of at least 65536 bytes/);
  });
});
