/**
 * A 3xx is an answer like any other (node-request.ts): neither engine follows it. Followed, a 307 to
 * the login would send the password, in the body, to whatever address the answer names.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { UfdlClient } from '../../src/client/api.js';
import { sendJson, startPeer } from './peer.js';
import { failure } from './setup.js';

describe.each(['got', 'node-http'] as const)('redirects over %s', (jsonEngine) => {
  it('should not follow a 307 of the login to another server, nor send it the password', async () => {
    const elsewhere = await startPeer((_req, res) => sendJson(res, 200, []), {
      obtain: (_req, res) => sendJson(res, 200, { access: 'a.b.c', refresh: 'd.e.f' }),
    });
    const peer = await startPeer((_req, res) => sendJson(res, 200, []), {
      obtain: (_req, res) => {
        res.writeHead(307, { location: `${elsewhere.url}/v1/auth/obtain`, 'content-length': 0 });
        res.end();
      },
    });
    const client = new UfdlClient({ jsonEngine, serverUrl: peer.url, username: 'worker', password: 'hunter2-secret', retryAttempts: 1 });
    onTestFinished(() => client.close());
    const err = await failure(client.listJobs());
    expect(err.status).toBe(307);
    expect(elsewhere.seen).toEqual([]);
    expect(peer.seen.map((r) => r.path)).toEqual(['/v1/auth/obtain']);
  });

  it('should answer a call redirected with 308 with the 3xx, sending it once, to the server asked', async () => {
    const elsewhere = await startPeer((_req, res) => sendJson(res, 200, { pk: 5 }));
    const peer = await startPeer((req, res) => {
      res.writeHead(308, { location: `${elsewhere.url}${req.path}`, 'content-length': 0 });
      res.end();
    });
    const client = new UfdlClient({ jsonEngine, serverUrl: peer.url, username: 'worker', password: 'pw', retryAttempts: 1 });
    onTestFinished(() => client.close());
    const err = await failure(client.finishJob(5));
    expect(err.status).toBe(308);
    expect(elsewhere.seen).toEqual([]);
    expect(peer.calls().map((r) => r.path)).toEqual(['/v1/jobs/5/finish']);
  });
});
