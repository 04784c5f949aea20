/**
 * Several addresses of one server: which failures move the client to the next address (no
 * connection, timeouts, 5xx) and which do not (4xx), what is sent again at once (only what never
 * left), sticking to the working address, going back to the first once it answers, one log line per
 * switch, and the address in use in the status. Real HTTP peers on loopback (peer.ts).
 */
import { beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { UfdlClient } from '../../src/client/api.js';
import type { ClientLogger, ClientOptions } from '../../src/client/options.js';
import { freePort } from '../helpers/server.js';
import { sleep, until } from '../helpers/wait.js';
import { fakeJwt, sendJson, startPeer, type Peer } from './peer.js';
import { failure } from './setup.js';

// The fields these tests read, and `outputs`, without which an answer is not a job (client/api.ts).
const JOB = { pk: 5, node: 3, start_time: null, end_time: null, error_reason: null, is_cancelled: false, outputs: [] };

interface Logged {
  level: string;
  fields: Record<string, unknown>;
  msg: string | undefined;
}

function recordingLogger(): { logger: ClientLogger; lines: Logged[] } {
  const lines: Logged[] = [];
  const at = (level: string) => (fields: object, msg?: string) => void lines.push({ level, fields: fields as Record<string, unknown>, msg });
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

/** The engine of the suite running now: got (the agent's) or node's own http (the CLI's) must fail over alike. */
let jsonEngine: NonNullable<ClientOptions['jsonEngine']> = 'got';

function clientOn(urls: string[], over: Partial<ClientOptions> = {}): UfdlClient {
  const client = new UfdlClient({ jsonEngine, serverUrl: urls, username: 'worker', password: 'pw', retryBaseDelayMs: 10, retryMaxDelayMs: 50, ...over });
  onTestFinished(() => client.close());
  return client;
}

/** An address where nothing listens: connections are refused. */
async function deadUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

const answersJob = (): Promise<Peer> => startPeer((req, res) => (req.path.startsWith('/v1/jobs/5') ? sendJson(res, 200, JOB) : sendJson(res, 404, { detail: 'Not found.' })));

describe.each(['got', 'node-http'] as const)('JSON calls over %s', (engine) => {
  beforeEach(() => {
    jsonEngine = engine;
  });

  describe('failing over between the addresses of one server', () => {
    it('should send a call that found the first address refusing connections to the next at once, even a start', async () => {
      const dead = await deadUrl();
      const live = await answersJob();
      const { logger, lines } = recordingLogger();
      const client = clientOn([dead, live.url], { logger, retryAttempts: 1 });
      // Non-idempotent and one attempt: it reaches the live address only because a refused connection proves nothing was sent.
      await expect(client.startJob(5)).resolves.toMatchObject({ pk: 5 });
      expect(live.calls().map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/jobs/5/start']);
      expect(client.getStatus().serverUrl).toBe(`${live.url}/`);
      const switches = lines.filter((l) => l.msg === 'server address failed; switching to the next');
      expect(switches).toHaveLength(1);
      expect(switches[0]!.fields).toMatchObject({ from: `${dead}/`, to: `${live.url}/` });
      expect(String(switches[0]!.fields.reason)).toContain('ECONNREFUSED');
    });

    it('should not send a non-idempotent call again after a 503, but send the next call to the next address', async () => {
      const sick = await startPeer((_req, res) => sendJson(res, 503, { detail: 'The server could not make the change durable.', code: 'UFDL_ERR_SERVER_NOT_DURABLE' }));
      const live = await answersJob();
      const client = clientOn([sick.url, live.url]);
      const err = await failure(client.finishJob(5));
      expect(err.status).toBe(503);
      expect(err.ambiguous).toBe(true);
      expect(sick.calls()).toHaveLength(1);
      expect(live.calls()).toHaveLength(0);
      // The caller's "did it land?" re-read goes to the address now in use.
      await expect(client.getJob(5)).resolves.toMatchObject({ pk: 5 });
      expect(live.calls().map((r) => r.path)).toEqual(['/v1/jobs/5']);
      const status = client.getStatus().endpoints;
      expect(status.current).toBe(`${live.url}/`);
      expect(status.addresses[0]).toMatchObject({ failures: 1, current: false });
      expect(status.addresses[0]!.lastFailure).toContain('UFDL_ERR_SERVER_NOT_DURABLE');
    });

    it('should retry an idempotent call that timed out on the next address', async () => {
      const stalled = await startPeer(() => {
        // never answers
      });
      const live = await answersJob();
      const client = clientOn([stalled.url, live.url], { responseTimeoutMs: 300, requestTimeoutMs: 600 });
      await expect(client.getJob(5)).resolves.toMatchObject({ pk: 5 });
      expect(stalled.calls()).toHaveLength(1);
      expect(client.getStatus().serverUrl).toBe(`${live.url}/`);
    });

    it('should stay on an address that answers 4xx: a refusal is an answer', async () => {
      const first = await startPeer((_req, res) => sendJson(res, 406, { detail: 'Job 5 has already been acquired' }));
      const second = await answersJob();
      const client = clientOn([first.url, second.url]);
      expect((await failure(client.acquireJob(5))).kind).toBe('taken');
      expect((await failure(client.getJob(6))).status).toBe(406);
      expect(second.seen).toHaveLength(0);
      expect(client.getStatus().endpoints).toMatchObject({ current: `${first.url}/`, switches: 0 });
    });

    it('should stick to the working address and not go back and forth', async () => {
      const dead = await deadUrl();
      const live = await answersJob();
      const client = clientOn([dead, live.url], { failbackAfterMs: 60_000 });
      for (let i = 0; i < 5; i++) await client.getJob(5);
      expect(live.calls()).toHaveLength(5);
      expect(client.getStatus().endpoints.switches).toBe(1);
    });

    it('should go back to the first address once it answers again, after failbackAfterMs', async () => {
      const port = await freePort();
      const first = `http://127.0.0.1:${port}`;
      const second = await answersJob();
      const { logger, lines } = recordingLogger();
      const client = clientOn([first, second.url], { failbackAfterMs: 200, logger });
      await client.getJob(5);
      expect(client.serverUrl).toBe(`${second.url}/`);
      // While the first is still down, its probes fail and the client stays.
      await sleep(300);
      await client.getJob(5);
      expect(client.serverUrl).toBe(`${second.url}/`);
      const revived = await startPeer((req, res) => (req.path.startsWith('/v1/jobs/5') ? sendJson(res, 200, JOB) : sendJson(res, 404, { detail: 'Not found.' })), {}, port);
      await until(async () => {
        await client.getJob(5);
        return client.serverUrl === `${first}/`;
      }, 20_000, 'the client back on the first address');
      const before = revived.calls().filter((r) => r.path === '/v1/jobs/5').length;
      await client.getJob(5);
      expect(revived.calls().filter((r) => r.path === '/v1/jobs/5').length).toBe(before + 1);
      expect(lines.filter((l) => l.msg === 'the first server address answers again; switching back to it')).toHaveLength(1);
    });

    it('should not go back to a first address whose readiness probe answers 503', async () => {
      const starting = await startPeer((_req, res) => sendJson(res, 503, { detail: 'starting' }));
      const second = await answersJob();
      const client = clientOn([starting.url, second.url], { failbackAfterMs: 100, retryAttempts: 2 });
      await client.getJob(5);
      expect(client.serverUrl).toBe(`${second.url}/`);
      // Probes are driven by traffic: keep calling until one has been made and answered.
      const probed = () => starting.seen.some((r) => r.path === '/readyz');
      await until(async () => {
        await client.getJob(5);
        return probed();
      }, 20_000, 'a probe of the first address');
      await sleep(50);
      await client.getJob(5);
      expect(client.serverUrl).toBe(`${second.url}/`);
      // Only the first call (whose 503 moved the client on) and the probes reached it.
      expect(starting.calls().map((r) => r.path).filter((p) => p !== '/readyz')).toEqual(['/v1/jobs/5']);
    });

    it('should keep its login across a switch when the replicas accept each other\'s tokens', async () => {
      const dead = await deadUrl();
      const first = await answersJob();
      const second = await answersJob();
      const client = clientOn([first.url, second.url, dead]);
      await client.getJob(5);
      await first.close();
      await client.getJob(5);
      expect(client.serverUrl).toBe(`${second.url}/`);
      // One login, on the first address; the second took its token.
      expect(client.auth.getStatus().obtains).toBe(1);
      expect(second.seen.map((r) => r.path)).toEqual(['/v1/jobs/5']);
      expect(second.seen[0]!.headers.authorization).toMatch(/^Bearer /);
    });

    it('should log in again on the next address when it refuses the first one\'s token (replicas that do not share a secret)', async () => {
      const first = await answersJob();
      const mine = new Set<string>();
      const second = await startPeer(
        (req, res) => (mine.has(String(req.headers.authorization).slice(7)) ? sendJson(res, 200, JOB) : sendJson(res, 401, { detail: 'Given token not valid for any token type' })),
        {
          obtain: (_req, res) => {
            const access = fakeJwt(300);
            mine.add(access);
            sendJson(res, 200, { access, refresh: fakeJwt(28800, 'refresh') });
          },
          refresh: (_req, res) => sendJson(res, 401, { detail: 'Token is invalid or expired' }),
        },
      );
      const client = clientOn([first.url, second.url]);
      await client.getJob(5);
      await first.close();
      await expect(client.getJob(5)).resolves.toMatchObject({ pk: 5 });
      expect(client.auth.getStatus().obtains).toBe(2);
      expect(second.seen.map((r) => `${r.path} ${r.path === '/v1/jobs/5' ? mine.has(String(r.headers.authorization).slice(7)) : ''}`)).toEqual([
        '/v1/jobs/5 false',
        '/v1/auth/refresh ',
        '/v1/auth/obtain ',
        '/v1/jobs/5 true',
      ]);
    });

    it('should try every address in turn and log the rotation once while none answers', async () => {
      const a = await deadUrl();
      const b = await deadUrl();
      const { logger, lines } = recordingLogger();
      const client = clientOn([a, b], { logger, retryAttempts: 4 });
      expect((await failure(client.getJob(5))).kind).toBe('network');
      expect(lines.filter((l) => l.level === 'warn' && l.msg === 'server address failed; switching to the next')).toHaveLength(1);
      expect(client.getStatus().endpoints.switches).toBeGreaterThanOrEqual(3);
    });

    it('should refuse a list with a bad or repeated address, naming it', () => {
      const make = (serverUrl: string[]) => () => new UfdlClient({ serverUrl, username: 'u', password: 'p' });
      expect(make([])).toThrow(/serverUrl.*non-empty list/);
      expect(make(['http://a:1', 'ftp://b'])).toThrow(/'serverUrl\[1\]' must be an http or https URL, got "ftp:\/\/b"/);
      expect(make(['http://a:1', 'http://u:p@b:2'])).toThrow(/serverUrl\[1\]' must not contain credentials/);
      expect(make(['http://a:1/', 'http://a:1'])).toThrow(/lists "http:\/\/a:1\/" twice/);
    });
  });
});
