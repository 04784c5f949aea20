/**
 * At the debug level the client logs each call to the server (docs/OPERATIONS.md, "Reading the
 * logs": `UFDL_AGENT_LOG_LEVEL=debug` shows each call): one line with the method, the path, the
 * status and the time, or why no answer came; never a password or a token. Before, the debug level
 * showed journal transitions and token refreshes, but no call.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { UfdlClient } from '../../src/client/api.js';
import { ADMIN_PASSWORD, ADMIN_USER, freePort, startTestServer } from '../helpers/server.js';
import { failure } from './setup.js';

interface Line {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

function capturingLogger(): { lines: Line[]; logger: { debug: (o: object, m?: string) => void; info: (o: object, m?: string) => void; warn: (o: object, m?: string) => void; error: (o: object, m?: string) => void } } {
  const lines: Line[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

describe.each(['got', 'node-http'] as const)('the calls to the server over %s', (jsonEngine) => {
  it('are logged at debug, one line each, with method, path and status, and no secret', async () => {
    const server = await startTestServer();
    const { lines, logger } = capturingLogger();
    const client = new UfdlClient({ jsonEngine, serverUrl: server.url, username: ADMIN_USER, password: ADMIN_PASSWORD, logger });
    onTestFinished(() => client.close());
    await client.listJobs();
    const calls = lines.filter((l) => l.msg === 'server call');
    expect(calls.map((l) => [l.level, l.obj.call, l.obj.status])).toEqual([
      ['debug', 'POST /v1/auth/obtain', 200],
      ['debug', 'POST /v1/jobs/list', 200],
    ]);
    for (const call of calls) expect(typeof call.obj.ms).toBe('number');
    const text = JSON.stringify(lines);
    expect(text).not.toContain(ADMIN_PASSWORD);
    expect(text).not.toContain(server.adminToken.split('.')[2]!);
  });

  it('say so when no answer came', async () => {
    const { lines, logger } = capturingLogger();
    const client = new UfdlClient({ jsonEngine, serverUrl: `http://127.0.0.1:${await freePort()}`, username: 'u', password: 'p', logger, retryAttempts: 1 });
    onTestFinished(() => client.close());
    await failure(client.listJobs());
    const none = lines.filter((l) => l.msg === 'server call got no answer');
    expect(none.length).toBeGreaterThan(0);
    expect(none[0]!.obj.call).toBe('POST /v1/auth/obtain');
    expect(String(none[0]!.obj.err)).toMatch(/ECONNREFUSED/);
  });
});
