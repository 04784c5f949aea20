/**
 * Retries, timeouts, back-off and token handling against a tiny real HTTP peer (peer.ts) that answers
 * 503s, stalls, drops sockets and refuses tokens on demand — with the JSON calls sent by each engine
 * (got, the agent's; node's own http, the CLI's), which must behave alike.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { UfdlClient } from '../../src/client/api.js';
import type { ClientOptions } from '../../src/client/options.js';
import { fakeJwt, sendJson, startPeer, type Peer } from './peer.js';
import { failure } from './setup.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

/** The engine of the suite running now (see the `describe.each` below). */
let jsonEngine: NonNullable<ClientOptions['jsonEngine']> = 'got';

function clientFor(peer: Peer | string, over: Partial<ClientOptions> = {}): UfdlClient {
  const client = new UfdlClient({
    jsonEngine,
    serverUrl: typeof peer === 'string' ? peer : peer.url,
    username: 'worker',
    password: 'pw',
    retryBaseDelayMs: 10,
    retryMaxDelayMs: 50,
    ...over,
  });
  onTestFinished(() => client.close());
  return client;
}


// The fields these tests read, and `outputs`, without which an answer is not a job (client/api.ts).
const JOB = { pk: 5, node: 3, start_time: null, end_time: null, error_reason: null, is_cancelled: false, outputs: [] };

describe.each(['got', 'node-http'] as const)('JSON calls over %s', (engine) => {
  beforeEach(() => {
    jsonEngine = engine;
  });

  describe('retries of idempotent calls', () => {
    it('should retry a list through two 503s and return the third answer', async () => {
      let n = 0;
      const peer = await startPeer((_req, res) => (++n <= 2 ? sendJson(res, 503, { detail: 'busy' }) : sendJson(res, 200, [JOB])));
      const jobs = await clientFor(peer).listJobs({});
      expect(jobs).toEqual([JOB]);
      expect(peer.calls().map((r) => `${r.method} ${r.path}`)).toEqual(Array(3).fill('POST /v1/jobs/list'));
    });

    it('should retry acquire, ping and 502/504 but not a 500 or a 4xx', async () => {
      const answers = [502, 504, 200];
      const peer = await startPeer((req, res) => {
        if (req.path === '/v1/jobs/5/acquire') return sendJson(res, answers.shift()!, answers.length === 0 ? JOB : { detail: 'gateway' });
        if (req.path === '/v1/jobs/6') return sendJson(res, 500, { detail: 'bug' });
        return sendJson(res, 404, { detail: 'Not found.' });
      });
      const client = clientFor(peer);
      await expect(client.acquireJob(5)).resolves.toEqual(JOB);
      expect((await failure(client.getJob(6))).kind).toBe('server');
      expect((await failure(client.getJob(7))).kind).toBe('not-found');
      const calls = peer.calls().map((r) => r.path);
      expect(calls.filter((p) => p === '/v1/jobs/5/acquire')).toHaveLength(3);
      expect(calls.filter((p) => p === '/v1/jobs/6')).toHaveLength(1);
      expect(calls.filter((p) => p === '/v1/jobs/7')).toHaveLength(1);
    });

    it('should stop after the configured number of attempts', async () => {
      const peer = await startPeer((_req, res) => sendJson(res, 503, { detail: 'down' }));
      const err = await failure(clientFor(peer, { retryAttempts: 3 }).getJob(5));
      expect(err.status).toBe(503);
      expect(err.transient).toBe(true);
      expect(peer.calls()).toHaveLength(3);
    });

    it('should not start a retry past the total retry time', async () => {
      const peer = await startPeer((_req, res) => sendJson(res, 503, { detail: 'down' }));
      const started = Date.now();
      await failure(clientFor(peer, { retryAttempts: 100, retryTotalMs: 300, retryBaseDelayMs: 50, retryMaxDelayMs: 100 }).getJob(5));
      expect(Date.now() - started).toBeLessThan(1500);
      expect(peer.calls().length).toBeGreaterThan(1);
      expect(peer.calls().length).toBeLessThan(12);
    });

    it("should wait a 503's Retry-After (capped at the largest delay)", async () => {
      let n = 0;
      const peer = await startPeer((_req, res) => {
        if (++n === 1) {
          res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' });
          res.end('{"detail":"shutting down"}');
          return;
        }
        sendJson(res, 200, JOB);
      });
      const started = Date.now();
      await clientFor(peer, { retryMaxDelayMs: 5000 }).getJob(5);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    });

    it('should retry a call whose socket the server closed', async () => {
      let n = 0;
      const peer = await startPeer((_req, res, raw) => {
        if (++n === 1) {
          raw.socket.destroy();
          return;
        }
        sendJson(res, 200, JOB);
      });
      await expect(clientFor(peer).getJob(5)).resolves.toEqual(JOB);
      expect(peer.calls()).toHaveLength(2);
    });

    it('should report a refused connection as kind network', async () => {
      const port = await new Promise<number>((resolve) => {
        const s = createServer();
        s.listen(0, '127.0.0.1', () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => resolve(p));
        });
      });
      const err = await failure(clientFor(`http://127.0.0.1:${port}`, { retryAttempts: 2 }).getJob(1));
      expect(err.kind).toBe('network');
      expect(err.code).toBe('ECONNREFUSED');
    });
  });

  describe('non-idempotent calls', () => {
    it('should send finish, start, progress, release and reset exactly once on a 503', async () => {
      const peer = await startPeer((_req, res) => sendJson(res, 503, { detail: 'busy' }));
      const client = clientFor(peer, { retryAttempts: 5 });
      for (const call of [
        () => client.finishJob(5),
        () => client.startJob(5),
        () => client.progressJob(5, 0.5),
        () => client.releaseJob(5),
        () => client.resetJob(5),
      ]) {
        const err = await failure(call());
        expect(err.status).toBe(503);
        expect(err.ambiguous).toBe(true);
      }
      expect(peer.calls().map((r) => `${r.method} ${r.path}`)).toEqual([
        'POST /v1/jobs/5/finish',
        'POST /v1/jobs/5/start',
        'POST /v1/jobs/5/progress/0.500',
        'DELETE /v1/jobs/5/release',
        'DELETE /v1/jobs/5/reset',
      ]);
    });

    it('should send the bodies the reference requires', async () => {
      const peer = await startPeer((_req, res) => sendJson(res, 200, JOB));
      const client = clientFor(peer);
      await client.startJob(5);
      await client.finishJob(5);
      await client.finishJob(5, { error: 'exit 3' });
      await client.progressJob(5, 1, { epoch: 2 });
      await client.progressJob(5, 0);
      const bodies = peer.calls().map((r) => [r.path, JSON.parse(r.body)]);
      expect(bodies).toEqual([
        ['/v1/jobs/5/start', { send_notification: 'email' }],
        ['/v1/jobs/5/finish', { success: true, send_notification: 'email' }],
        ['/v1/jobs/5/finish', { success: false, send_notification: 'email', error: 'exit 3' }],
        ['/v1/jobs/5/progress/1.0', { epoch: 2 }],
        ['/v1/jobs/5/progress/0.0', {}],
      ]);
    });

    it('should not retry an upload on a 503', async () => {
      const dir = await tempDir('ufdl-client-');
      await writeFile(join(dir, 'f'), 'hello');
      const peer = await startPeer((_req, res) => sendJson(res, 503, { detail: 'busy' }));
      const err = await failure(clientFor(peer).uploadOutput(5, 'f', 'BLOB', join(dir, 'f')));
      expect(err.status).toBe(503);
      expect(peer.calls()).toHaveLength(1);
    });
  });

  describe('early refusals of an upload', () => {
    it('should read the answer of a server that refuses an upload before its body and drops the socket', async () => {
      const { createServer: createHttpServer } = await import('node:http');
      const dir = await tempDir('ufdl-client-');
      await writeFile(join(dir, 'big'), Buffer.alloc(16 * 1024 * 1024, 1));
      // A raw server: it answers before reading the body (the peer helper reads bodies first).
      const server = createHttpServer((req, res) => {
        if (req.url === '/v1/auth/obtain') {
          req.resume();
          req.on('end', () => sendJson(res, 200, { access: fakeJwt(300), refresh: fakeJwt(3600, 'refresh') }));
          return;
        }
        sendJson(res, 413, { detail: 'Output exceeds the maximum size' });
        setTimeout(() => req.socket.destroy(), 10);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      onTestFinished(() => {
        server.closeAllConnections();
        server.close();
      });
      const { port } = server.address() as { port: number };
      const err = await failure(clientFor(`http://127.0.0.1:${port}`).uploadOutput(1, 'big', 'BLOB', join(dir, 'big')));
      expect(err.kind).toBe('too-large');
      expect(err.status).toBe(413);
    });
  });

  describe('timeouts', () => {
    it('should time out a stalled answer, retrying an idempotent call but not a finish', async () => {
      const peer = await startPeer(() => {
        // never answer
      });
      const client = clientFor(peer, { responseTimeoutMs: 200, requestTimeoutMs: 400, retryAttempts: 2 });
      const started = Date.now();
      const err = await failure(client.getJob(5));
      expect(err.kind).toBe('timeout');
      expect(err.transient).toBe(true);
      expect(peer.calls()).toHaveLength(2);
      const finish = await failure(client.finishJob(5));
      expect(finish.kind).toBe('timeout');
      expect(finish.ambiguous).toBe(true);
      expect(peer.calls()).toHaveLength(3);
      expect(Date.now() - started).toBeLessThan(5000);
    });

    it('should wait for an answer under a timeout longer than a node timer can wait', async () => {
      // ~35 days each: node would run such a timer after 1 ms, failing every request at once.
      const long = 3_000_000_000;
      const peer = await startPeer((_req, res) => void setTimeout(() => sendJson(res, 200, JOB), 50));
      const client = clientFor(peer, { connectTimeoutMs: long, responseTimeoutMs: long, requestTimeoutMs: long, transferIdleTimeoutMs: long, retryAttempts: 1 });
      await expect(client.getJob(5)).resolves.toEqual(JOB);
    });

    it('should bound the total time of a trickling answer', async () => {
      const peer = await startPeer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('[');
        const timer = setInterval(() => res.write(' '), 50);
        res.on('close', () => clearInterval(timer));
      });
      const err = await failure(clientFor(peer, { requestTimeoutMs: 300, retryAttempts: 1 }).listJobs());
      expect(err.kind).toBe('timeout');
    });

    it("should abort a call (and its retry back-off) with the caller's signal", async () => {
      const peer = await startPeer((_req, res) => sendJson(res, 503, { detail: 'down' }));
      const client = clientFor(peer, { retryAttempts: 50, retryBaseDelayMs: 200, retryMaxDelayMs: 200, retryTotalMs: 60_000 });
      const controller = new AbortController();
      const pending = failure(client.getJob(5, { signal: controller.signal }));
      await new Promise((r) => setTimeout(r, 150));
      controller.abort();
      const started = Date.now();
      expect((await pending).kind).toBe('aborted');
      expect(Date.now() - started).toBeLessThan(150);
      // The client still works for calls without that signal.
      await expect(failure(client.getJob(5, { signal: AbortSignal.timeout(100) }))).resolves.toMatchObject({ kind: 'aborted' });
    });

    it('should abort a call when the client is closed', async () => {
      const peer = await startPeer(() => {});
      const client = clientFor(peer);
      const pending = failure(client.getJob(5));
      await new Promise((r) => setTimeout(r, 100));
      client.close();
      expect((await pending).kind).toBe('aborted');
    });
  });

  describe('headers', () => {
    it('should send Bearer and Node-Id, but no Node-Id on node create and no credentials on login', async () => {
      const peer = await startPeer((req, res) => sendJson(res, req.path === '/v1/nodes/create' ? 201 : 200, req.path === '/v1/nodes/ping' ? '' : JOB));
      const client = clientFor(peer, { nodePk: 3 });
      await client.ping();
      await client.createNode({ ip: '10.0.0.1', index: 0, cpu_mem: 1024 });
      client.setNodePk(9);
      await client.getJob(5);
      client.setNodePk(null);
      await client.getJob(5);
      const [login, ...calls] = peer.seen;
      expect(login!.path).toBe('/v1/auth/obtain');
      expect(login!.headers.authorization).toBeUndefined();
      expect(login!.headers['node-id']).toBeUndefined();
      expect(JSON.parse(login!.body)).toEqual({ username: 'worker', password: 'pw' });
      expect(calls.map((r) => [r.path, r.headers['node-id']])).toEqual([
        ['/v1/nodes/ping', '3'],
        ['/v1/nodes/create', undefined],
        ['/v1/jobs/5', '9'],
        ['/v1/jobs/5', undefined],
      ]);
      for (const r of calls) expect(r.headers.authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    });
  });

  describe('siblings for other nodes', () => {
    it('should share one login and the capabilities, each sending its own Node-Id', async () => {
      const peer = await startPeer((req, res) => {
        if (req.path === '/v1/ufdl-agent/capabilities') return sendJson(res, 404, { detail: 'Not found.' });
        sendJson(res, 200, req.path === '/v1/nodes/ping' ? '' : req.path === '/v1/jobs/list' ? [JOB] : JOB);
      });
      const root = clientFor(peer, { nodePk: 1 });
      const slot2 = root.forNode(2);
      const slot3 = root.forNode(3);
      await Promise.all([root.ping(), slot2.ping(), slot3.ping()]);
      await root.getCapabilities();
      expect(slot3.capabilities).toBeNull();
      await slot2.listJobs({}, { waitSeconds: 5 });
      expect(peer.seen.filter((r) => r.path === '/v1/auth/obtain')).toHaveLength(1);
      expect(peer.seen.filter((r) => r.path === '/v1/ufdl-agent/capabilities')).toHaveLength(1);
      expect(peer.calls().filter((r) => r.path === '/v1/nodes/ping').map((r) => r.headers['node-id']).sort()).toEqual(['1', '2', '3']);
      expect(slot2.nodePk).toBe(2);
      slot2.close(); // a sibling's close leaves the others working
      await root.getJob(5);
      root.close();
      expect((await failure(slot3.getJob(5))).kind).toBe('aborted');
    });
  });

  describe('tokens', () => {
    it('should refresh after a 401 and retry the call once', async () => {
      let refused = false;
      const peer = await startPeer((req, res) => {
        if (!refused) {
          refused = true;
          return sendJson(res, 401, { detail: 'Given token not valid for any token type', code: 'token_not_valid' });
        }
        sendJson(res, 200, JOB);
      });
      const client = clientFor(peer);
      await expect(client.finishJob(5)).resolves.toEqual(JOB);
      expect(peer.seen.map((r) => r.path)).toEqual(['/v1/auth/obtain', '/v1/jobs/5/finish', '/v1/auth/refresh', '/v1/jobs/5/finish']);
      const [, first, , second] = peer.seen;
      expect(first!.headers.authorization).not.toBe(second!.headers.authorization);
      expect(client.auth.getStatus()).toMatchObject({ obtains: 1, refreshes: 1, unauthorized: 1 });
    });

    it('should log in again when the refresh is refused', async () => {
      let refused = false;
      const peer = await startPeer(
        (_req, res) => {
          if (!refused) {
            refused = true;
            return sendJson(res, 401, { detail: 'Given token not valid for any token type' });
          }
          sendJson(res, 200, JOB);
        },
        { refresh: (_req, res) => sendJson(res, 401, { detail: 'Token is invalid or expired', code: 'token_not_valid' }) },
      );
      const client = clientFor(peer);
      await client.getJob(5);
      expect(peer.seen.map((r) => r.path)).toEqual(['/v1/auth/obtain', '/v1/jobs/5', '/v1/auth/refresh', '/v1/auth/obtain', '/v1/jobs/5']);
      expect(client.auth.getStatus()).toMatchObject({ obtains: 2, refreshes: 0 });
    });

    it('should give up with kind auth after one retry that is refused too', async () => {
      const peer = await startPeer((_req, res) => sendJson(res, 401, { detail: 'Given token not valid for any token type' }));
      const err = await failure(clientFor(peer).getJob(5));
      expect(err.kind).toBe('auth');
      expect(peer.calls()).toHaveLength(2);
    });

    it('should refuse a wrong password with kind auth, once, without retrying or logging the password', async () => {
      const lines: string[] = [];
      const logger = {
        debug: (o: object, m?: string) => lines.push(JSON.stringify(o) + (m ?? '')),
        info: (o: object, m?: string) => lines.push(JSON.stringify(o) + (m ?? '')),
        warn: (o: object, m?: string) => lines.push(JSON.stringify(o) + (m ?? '')),
        error: (o: object, m?: string) => lines.push(JSON.stringify(o) + (m ?? '')),
      };
      const peer = await startPeer(() => {}, { obtain: (_req, res) => sendJson(res, 401, { detail: 'No active account found with the given credentials' }) });
      const err = await failure(clientFor(peer, { password: 'hunter2-secret', logger }).listJobs());
      expect(err.kind).toBe('auth');
      expect(err.status).toBe(401);
      expect(peer.seen.map((r) => r.path)).toEqual(['/v1/auth/obtain']);
      expect(lines.join('\n')).not.toMatch(/hunter2/);
    });

    it('should refresh ahead of expiry, before the token is refused', async () => {
      const peer = await startPeer(
        (req, res) => sendJson(res, 200, JOB),
        {
          obtain: (_req, res) => sendJson(res, 200, { access: fakeJwt(2), refresh: fakeJwt(3600, 'refresh') }),
          refresh: (_req, res) => sendJson(res, 200, { access: fakeJwt(2) }),
        },
      );
      const client = clientFor(peer);
      await client.getJob(5);
      await client.getJob(5); // fresh token: no refresh
      await new Promise((r) => setTimeout(r, 1200)); // less than half the life remains
      await client.getJob(5);
      expect(peer.seen.map((r) => r.path)).toEqual(['/v1/auth/obtain', '/v1/jobs/5', '/v1/jobs/5', '/v1/auth/refresh', '/v1/jobs/5']);
      expect(client.auth.getStatus()).toMatchObject({ refreshesAhead: 1, unauthorized: 0 });
    });

    it('should share one login between concurrent calls', async () => {
      const peer = await startPeer((_req, res) => sendJson(res, 200, JOB));
      const client = clientFor(peer);
      await Promise.all([client.getJob(5), client.getJob(5), client.getJob(5)]);
      expect(peer.seen.filter((r) => r.path === '/v1/auth/obtain')).toHaveLength(1);
    });

    it('should not abort a shared login for the other callers when the one that began it is aborted', async () => {
      let answerLogin!: () => void;
      const loginAnswered = new Promise<void>((resolve) => (answerLogin = resolve));
      const peer = await startPeer((_req, res) => sendJson(res, 200, JOB), {
        obtain: async (_req, res) => {
          await loginAnswered;
          sendJson(res, 200, { access: fakeJwt(300), refresh: fakeJwt(28800, 'refresh') });
        },
      });
      const client = clientFor(peer);
      // A poll iteration begins the login; a job's call joins it; then the iteration is stopped.
      const iteration = new AbortController();
      const poll = client.getJob(5, { signal: iteration.signal });
      await until(() => peer.seen.some((r) => r.path === '/v1/auth/obtain'));
      const jobCall = client.getJob(5);
      iteration.abort();
      expect(await failure(poll)).toMatchObject({ kind: 'aborted' });
      answerLogin();
      await expect(jobCall).resolves.toMatchObject({ pk: 5 });
      expect(peer.seen.filter((r) => r.path === '/v1/auth/obtain')).toHaveLength(1);
    });

    it('should abort a shared login once every caller waiting for it has left', async () => {
      let loginClosed: Promise<void> | undefined;
      const peer = await startPeer((_req, res) => sendJson(res, 200, JOB), {
        // Never answers: only the client's abort ends the login (its connection closes).
        obtain: (_req, _res, raw) => {
          loginClosed = new Promise<void>((resolve) => raw.socket.once('close', () => resolve()));
        },
      });
      const client = clientFor(peer);
      const [first, second] = [new AbortController(), new AbortController()];
      const calls = [client.getJob(5, { signal: first.signal }), client.getJob(5, { signal: second.signal })];
      await until(() => loginClosed !== undefined);
      first.abort();
      expect(await failure(calls[0]!)).toMatchObject({ kind: 'aborted' });
      second.abort();
      expect(await failure(calls[1]!)).toMatchObject({ kind: 'aborted' });
      await loginClosed;
    });
  });

  describe('capabilities and the wait header', () => {
    const CAPS = {
      server: 'ufdl-agent',
      version: '0.1.0',
      extensions: { wait: { max_seconds: 60 }, lost_node: null, websocket: { auth: true } },
      limits: { max_output_bytes: 1, max_body_bytes: 1 },
    };

    it('should send X-UFDL-Wait only when offered, with a longer timeout', async () => {
      const peer = await startPeer((req, res) => {
        if (req.path === '/v1/ufdl-agent/capabilities') return sendJson(res, 200, CAPS);
        // Answer after the ordinary response timeout: only the lengthened one lets this through.
        setTimeout(() => sendJson(res, 200, []), 600);
      });
      const client = clientFor(peer, { responseTimeoutMs: 300, requestTimeoutMs: 400, retryAttempts: 1 });
      await expect(client.listJobs({}, { waitSeconds: 2 })).resolves.toEqual([]);
      const list = peer.calls().find((r) => r.path === '/v1/jobs/list')!;
      expect(list.headers['x-ufdl-wait']).toBe('2');
      expect(client.capabilities).toEqual(CAPS);
    });

    it('should treat 404 HTML or a non-JSON answer as a reference server, and never send the header', async () => {
      let html404 = true;
      const peer = await startPeer((req, res) => {
        if (req.path === '/v1/ufdl-agent/capabilities') {
          res.writeHead(html404 ? 404 : 200, { 'content-type': 'text/html' });
          res.end('<html><body>Page not found</body></html>');
          return;
        }
        sendJson(res, 200, []);
      });
      const client = clientFor(peer);
      await client.listJobs({}, { waitSeconds: 5 });
      expect(client.capabilities).toBeNull();
      expect(peer.calls().find((r) => r.path === '/v1/jobs/list')!.headers['x-ufdl-wait']).toBeUndefined();
      html404 = false;
      await expect(client.getCapabilities()).resolves.toBeNull();
    });

    it('should throw, not guess, when the capabilities call fails with a 5xx', async () => {
      const peer = await startPeer((_req, res) => sendJson(res, 500, { detail: 'bug' }));
      expect((await failure(clientFor(peer).getCapabilities())).kind).toBe('server');
    });
  });

  describe('downloads', () => {
    it('should retry a truncated download and leave no partial file behind', async () => {
      const dir = await tempDir('ufdl-client-');
      const payload = Buffer.alloc(256 * 1024, 7);
      let n = 0;
      const peer = await startPeer((req, res, raw) => {
        expect(req.headers.accept).toBe('*/*');
        res.writeHead(200, { 'content-type': 'application/data', 'content-length': payload.length });
        if (++n === 1) {
          res.write(payload.subarray(0, 1000));
          setTimeout(() => raw.socket.destroy(), 20);
          return;
        }
        res.end(payload);
      });
      const dest = join(dir, 'out.bin');
      const result = await clientFor(peer).downloadOutput(5, 'model', 'Compressed<JSON, 8>', dest);
      expect(result.bytes).toBe(payload.length);
      expect((await readFile(dest)).equals(payload)).toBe(true);
      expect(peer.calls().map((r) => r.path)).toEqual(Array(2).fill('/v1/jobs/5/outputs/model/Compressed%3CJSON%2C%208%3E'));
      const { readdir } = await import('node:fs/promises');
      expect(await readdir(dir)).toEqual(['out.bin']);
    });

    it('should give up on a body that stalls longer than the idle limit, and try again', async () => {
      const dir = await tempDir('ufdl-client-');
      const payload = Buffer.alloc(64 * 1024, 3);
      let n = 0;
      const peer = await startPeer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/data', 'content-length': payload.length });
        // The first answer sends a little, then nothing more, ever: only the idle limit ends it.
        if (++n === 1) res.write(payload.subarray(0, 1000));
        else res.end(payload);
      });
      const dest = join(dir, 'out.bin');
      const result = await clientFor(peer, { transferIdleTimeoutMs: 300 }).downloadOutput(5, 'model', 'BLOB', dest);
      expect(result.bytes).toBe(payload.length);
      expect((await readFile(dest)).equals(payload)).toBe(true);
      expect(n).toBe(2);
      const { readdir } = await import('node:fs/promises');
      expect(await readdir(dir)).toEqual(['out.bin']);
    });

    it('should set no total limit on a body that keeps moving', async () => {
      const dir = await tempDir('ufdl-client-');
      const pieces = 8;
      const piece = Buffer.alloc(1024, 9);
      let n = 0;
      const peer = await startPeer((_req, res) => {
        n++;
        res.writeHead(200, { 'content-type': 'application/data', 'content-length': pieces * piece.length });
        let sent = 0;
        const next = () => {
          res.write(piece);
          if (++sent < pieces) setTimeout(next, 100);
          else res.end();
        };
        next();
      });
      // 8 pieces 100 ms apart: longer in all than the idle limit, never that long without a byte.
      const result = await clientFor(peer, { transferIdleTimeoutMs: 400, requestTimeoutMs: 200 }).downloadOutput(5, 'model', 'BLOB', join(dir, 'slow.bin'));
      expect(result.bytes).toBe(pieces * piece.length);
      expect(n).toBe(1);
    });

    it('should stop a download when its caller aborts, and leave no partial file', async () => {
      const dir = await tempDir('ufdl-client-');
      const controller = new AbortController();
      const peer = await startPeer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/data', 'content-length': 1 << 20 });
        res.write(Buffer.alloc(4096), () => setTimeout(() => controller.abort(), 50));
      });
      const err = await failure(clientFor(peer).downloadOutput(5, 'model', 'BLOB', join(dir, 'out.bin'), { signal: controller.signal }));
      expect(err.kind).toBe('aborted');
      const { readdir } = await import('node:fs/promises');
      expect(await readdir(dir)).toEqual([]);
    });

    it('should map an error answer of a binary route (JSON body, any content type)', async () => {
      const dir = await tempDir('ufdl-client-');
      const peer = await startPeer((_req, res) => {
        res.writeHead(400, { 'content-type': 'application/data' });
        res.end(JSON.stringify({ detail: "Bad name 'x': Job has no output by this name/type (x/BLOB)" }));
      });
      const err = await failure(clientFor(peer).downloadOutput(5, 'x', 'BLOB', join(dir, 'x')));
      expect(err.kind).toBe('bad-request');
      expect(err.detail).toMatch(/no output by this name/);
      const { readdir } = await import('node:fs/promises');
      expect(await readdir(dir)).toEqual([]);
    });
  });
});
