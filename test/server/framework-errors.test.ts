/**
 * Regression (found by the fault campaign's bad-input storm, test/faults/bad-input-storm.fault.ts):
 * refusals that happen before a route handler runs must still be JSON `{"detail": …}` and never HTML
 * (docs/COMPATIBILITY.md):
 *
 * - a path that is not valid percent-encoding (fastify's FST_ERR_BAD_URL) answered fastify's default
 *   `{"error","code","message","statusCode"}` body;
 * - a path parameter over the router's maxParamLength (414) likewise;
 * - a request with web-socket `Upgrade` headers but a bad handshake, on any route, answered `ws`'s
 *   text/html page ("Missing or invalid Sec-WebSocket-Key header");
 * - an `Expect` header other than `100-continue` (found by an attacker's sweep of every route) was
 *   answered by Node itself: a 417 with no body at all.
 */
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

function send(url: string, method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('upgrade', () => reject(new Error('unexpected upgrade')));
    req.on('error', reject);
    req.end();
  });
}

function expectJsonDetail(answer: Answer, status: number): void {
  expect(answer.status).toBe(status);
  expect(answer.contentType).toMatch(/^application\/json/);
  expect(answer.body).not.toMatch(/^\s*</);
  expect(typeof (JSON.parse(answer.body) as { detail?: unknown }).detail).toBe('string');
}

describe('refusals before the route handler are JSON {"detail"}', () => {
  it('should answer a path with bad percent-encoding with a 400 JSON detail', async () => {
    const server = await startTestServer();
    expectJsonDetail(await send(server.url, 'GET', '/v1/jobs/%zz/acquire'), 400);
    expectJsonDetail(await send(server.url, 'DELETE', '/v1/job-outputs/%/hard'), 400);
  });

  it('should answer an over-long path parameter with a 414 JSON detail', async () => {
    const server = await startTestServer();
    expectJsonDetail(await send(server.url, 'GET', `/v1/jobs/${'x'.repeat(5000)}`), 414);
  });

  it('should answer an Expect header it cannot meet with a 417 JSON detail, and serve the next request', async () => {
    const server = await startTestServer();
    for (const expect_ of ['junk', '200-ok', '']) {
      const answer = await send(server.url, 'POST', '/v1/auth/verify', { expect: expect_, 'content-type': 'application/json' });
      expectJsonDetail(answer, 417);
      expect(JSON.parse(answer.body).detail).toContain(expect_);
    }
    // 100-continue is still met as before (the route answers).
    expect((await send(server.url, 'POST', '/v1/auth/verify', { expect: '100-continue', 'content-type': 'application/json' })).status).toBe(400);
    expect((await send(server.url, 'GET', '/livez')).status).toBe(200);
  });

  it('should answer a bad web-socket handshake on any route with a JSON detail, never HTML', async () => {
    const server = await startTestServer();
    const upgrade = { connection: 'Upgrade', upgrade: 'websocket' };
    // No Sec-WebSocket-Key, on a plain route; on the watch route an unknown job is refused first.
    expectJsonDetail(await send(server.url, 'GET', '/livez', upgrade), 400);
    expectJsonDetail(await send(server.url, 'GET', '/v1/jobs/999', { ...upgrade, authorization: `Bearer ${server.adminToken}` }), 404);
    // A bad version: 400 naming the versions this server speaks.
    const key = { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
    expectJsonDetail(await send(server.url, 'GET', '/livez', { ...upgrade, ...key, 'sec-websocket-version': '99' }), 400);
    // Upgrade headers on a POST route: 405.
    expectJsonDetail(await send(server.url, 'POST', '/v1/auth/obtain', { ...upgrade, ...key, 'sec-websocket-version': '13' }), 405);
    // The server is fine afterwards.
    expect((await send(server.url, 'GET', '/livez')).status).toBe(200);
  });
});
