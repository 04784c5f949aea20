/**
 * Who may read `/metrics` (issue 9, item 9): open by default, as scrapers expect and the docs say;
 * with `metricsToken` set, only a request with that secret as its bearer token, or an admin's.
 */
import { describe, expect, it } from 'vitest';
import { api, startTestServer } from '../helpers/server.js';

describe('/metrics', () => {
  it('is open by default', async () => {
    const server = await startTestServer();
    const res = await api(server.url, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toContain('ufdl_server_http_requests_total');
  });

  it('needs the metrics secret, or an admin token, once one is configured', async () => {
    const server = await startTestServer({ metricsToken: 'scrape-secret-1234' });
    const anonymous = await api(server.url, 'GET', '/metrics');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.detail).toBe('Authentication credentials were not provided.');
    expect((await api(server.url, 'GET', '/metrics', { headers: { authorization: 'Bearer wrong-secret' } })).status).toBe(401);
    const scraper = await api(server.url, 'GET', '/metrics', { headers: { authorization: 'Bearer scrape-secret-1234' } });
    expect(scraper.status).toBe(200);
    expect(scraper.text).toContain('ufdl_server_http_requests_total');
    expect((await api(server.url, 'GET', '/metrics', { token: server.adminToken })).status).toBe(200);
    await api(server.url, 'POST', '/v1/users/create', { token: server.adminToken, json: { username: 'gina', password: 'gina-password' } });
    const gina = await server.login('gina', 'gina-password');
    const user = await api(server.url, 'GET', '/metrics', { token: gina });
    expect(user.status).toBe(403);
    expect(user.body.detail).toBe('/metrics needs the metrics secret (serve.metrics_token) or an admin token');
    // The secret opens nothing else.
    expect((await api(server.url, 'POST', '/v1/jobs/list', { headers: { authorization: 'Bearer scrape-secret-1234' }, json: {} })).status).toBe(401);
  });
});
