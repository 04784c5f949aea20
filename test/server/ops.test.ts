/**
 * /livez, /readyz, /metrics and capability discovery. These build the app themselves (not through
 * startTestServer) because they need the fastify instance: to install the metrics hook the way
 * `buildApp` does, and to break the database under a running server.
 */
import type { FastifyInstance } from 'fastify';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CAPABILITIES_PATH, MAX_WAIT_SECONDS } from '../../src/protocol/wire.js';
import { buildApp } from '../../src/server/app.js';
import { registerMetricsHooks, serverMetrics } from '../../src/server/metrics.js';
import { immediateTransaction } from '../../src/server/store/db.js';
import type { ServerOptions } from '../../src/server/options.js';
import { api } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

async function start(options: Partial<ServerOptions> = {}): Promise<{ app: FastifyInstance; url: string }> {
  const dataDir = await tempDir('ufdl-ops-');
  const { app } = await buildApp({ dataDir, port: 0, adminPassword: 'admin-password-for-tests', logLevel: false, ...options });
  registerMetricsHooks(app);
  registerMetricsHooks(app); // idempotent: counts must not double
  await app.listen({ host: '127.0.0.1', port: 0 });
  onTestFinished(async () => {
    await app.close();
  });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return { app, url: `http://127.0.0.1:${address.port}` };
}

/** The value of one sample line of the Prometheus text, or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const LIVEZ_200 = '{method="GET",route="/livez",status="200"}';

describe('GET /livez', () => {
  it('answers 200 {"status":"ok"} without a token', async () => {
    const { url } = await start();
    const res = await api(url, 'GET', '/livez');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });
});

describe('GET /readyz', () => {
  it('answers 200 while the database answers, 503 with a detail once it does not', async () => {
    const { app, url } = await start();
    const ready = await api(url, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready' });
    app.ufdl.db.close();
    const broken = await api(url, 'GET', '/readyz');
    expect(broken.status).toBe(503);
    expect(broken.body.detail).toMatch(/^Not ready: the database does not answer/);
    // Liveness is about the process, not its dependencies.
    expect((await api(url, 'GET', '/livez')).status).toBe(200);
  });
});

describe('GET /metrics', () => {
  it('counts requests by method, route pattern and status', async () => {
    const { url } = await start();
    await api(url, 'GET', '/livez');
    await api(url, 'GET', '/livez');
    await api(url, 'GET', '/v1/nodes/17');
    await api(url, 'GET', '/no/such/route');
    const res = await api(url, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(sample(res.text, 'ufdl_server_http_requests_total', LIVEZ_200)).toBe(2);
    // The route pattern, never the pk: label sets stay bounded.
    expect(sample(res.text, 'ufdl_server_http_requests_total', '{method="GET",route="/v1/nodes/:pk",status="401"}')).toBe(1);
    expect(sample(res.text, 'ufdl_server_http_requests_total', '{method="GET",route="(unmatched)",status="404"}')).toBe(1);
    expect(res.text).toContain('ufdl_server_http_request_duration_seconds_bucket');
  });

  it('gives answer times as a histogram per method and route pattern, its buckets cumulative', async () => {
    const { app, url } = await start();
    await api(url, 'GET', '/livez');
    await api(url, 'GET', '/livez');
    await api(url, 'GET', '/v1/nodes/17');
    await api(url, 'GET', '/v1/nodes/18');
    const { text } = await api(url, 'GET', '/metrics');
    const name = 'ufdl_server_http_request_duration_seconds';
    for (const [route, n] of [['/livez', 2], ['/v1/nodes/:pk', 2]] as const) {
      const labels = `method="GET",route="${route}"`;
      expect(sample(text, `${name}_count`, `{${labels}}`)).toBe(n);
      expect(sample(text, `${name}_bucket`, `{${labels},le="+Inf"}`)).toBe(n);
      const sum = sample(text, `${name}_sum`, `{${labels}}`)!;
      expect(sum).toBeGreaterThan(0);
      expect(sum).toBeLessThan(60 * n);
      const buckets = ['0.001', '0.005', '0.01', '0.05', '0.1', '0.5', '1', '5', '30', '60'].map((le) => sample(text, `${name}_bucket`, `{${labels},le="${le}"}`));
      expect(buckets.every((b) => b !== undefined && b <= n)).toBe(true);
      for (let i = 1; i < buckets.length; i++) expect(buckets[i]!).toBeGreaterThanOrEqual(buckets[i - 1]!);
      expect(buckets.at(-1)).toBe(n);
    }
    // A (method, route) never answered has no series; the JSON form of the registry agrees with the text.
    expect(text).not.toContain(`${name}_count{method="POST",route="/livez"}`);
    const json = await serverMetrics(app.ufdl).registry.getMetricsAsJSON();
    const histogram = json.find((m) => m.name === name)!;
    expect(histogram.type).toBe('histogram');
    expect(histogram.values).toContainEqual(expect.objectContaining({ metricName: `${name}_count`, labels: { method: 'GET', route: '/livez' }, value: 2 }));
  });

  it('computes jobs by phase and nodes from the database at scrape time', async () => {
    const { app, url } = await start();
    const { db } = app.ufdl;
    const now = new Date().toISOString();
    db.prepare(
      `INSERT INTO templates (name, version, type, executor_class, parameters, creation_time) VALUES ('t', 1, 'Run', 'x', '{}', ?)`,
    ).run(now);
    const insert = db.prepare('INSERT INTO jobs (template, start_time, end_time, error_reason, creation_time) VALUES (1, ?, ?, ?, ?)');
    insert.run(null, null, null, now); // CREATED
    insert.run(null, null, null, now); // CREATED
    insert.run(now, null, null, now); // STARTED
    insert.run(now, now, null, now); // FINISHED
    insert.run(now, now, 'boom', now); // ERRORED
    db.prepare(`INSERT INTO nodes (ip, "index", cpu_mem, current_job) VALUES ('10.0.0.1', 0, 1, 3), ('10.0.0.2', 0, 1, NULL)`).run();
    const text = (await api(url, 'GET', '/metrics')).text;
    expect(sample(text, 'ufdl_server_jobs', '{phase="CREATED"}')).toBe(2);
    expect(sample(text, 'ufdl_server_jobs', '{phase="STARTED"}')).toBe(1);
    expect(sample(text, 'ufdl_server_jobs', '{phase="FINISHED"}')).toBe(1);
    expect(sample(text, 'ufdl_server_jobs', '{phase="ERRORED"}')).toBe(1);
    expect(sample(text, 'ufdl_server_jobs', '{phase="CANCELLED"}')).toBe(0);
    expect(sample(text, 'ufdl_server_nodes')).toBe(2);
    expect(sample(text, 'ufdl_server_nodes_working')).toBe(1);
    expect(sample(text, 'ufdl_server_uptime_seconds')).toBeGreaterThanOrEqual(0);

    db.prepare('UPDATE jobs SET start_time = ? WHERE pk = 1').run(now);
    const later = (await api(url, 'GET', '/metrics')).text;
    expect(sample(later, 'ufdl_server_jobs', '{phase="CREATED"}')).toBe(1);
    expect(sample(later, 'ufdl_server_jobs', '{phase="STARTED"}')).toBe(2);

    // Cancelled before and after start, and soft-deleted jobs of every phase, which count nowhere.
    const cancelled = db.prepare('INSERT INTO jobs (template, start_time, end_time, error_reason, cancelled_unstarted, creation_time, deletion_time) VALUES (1, ?, ?, ?, ?, ?, ?)');
    cancelled.run(null, null, 'cancelled', 1, now, null);
    cancelled.run(now, null, 'cancelled', 0, now, null);
    for (const [start, end, error] of [[null, null, null], [now, null, null], [now, now, null], [now, now, 'boom'], [now, null, 'cancelled']]) {
      cancelled.run(start, end, error, 0, now, now);
    }
    const last = (await api(url, 'GET', '/metrics')).text;
    expect(['CREATED', 'STARTED', 'FINISHED', 'ERRORED', 'CANCELLED'].map((phase) => sample(last, 'ufdl_server_jobs', `{phase="${phase}"}`))).toEqual([1, 2, 1, 1, 2]);
  });

  it('counts the disk syncs of group commit, the answers they released, and the event loop busy time', async () => {
    const { app, url } = await start({ adminPassword: 'admin-password-for-tests' });
    const before = (await api(url, 'GET', '/metrics')).text;
    const token = (await api<{ access: string }>(url, 'POST', '/v1/auth/obtain', { json: { username: 'admin', password: 'admin-password-for-tests' } })).body.access;
    for (let i = 0; i < 3; i++) {
      expect((await api(url, 'POST', '/v1/nodes/create', { token, json: { ip: '10.0.0.9', index: i, cpu_mem: 1 } })).status).toBe(201);
    }
    const after = (await api(url, 'GET', '/metrics')).text;
    const grew = (name: string, labels = '') => sample(after, name, labels)! - sample(before, name, labels)!;
    if (app.ufdl.options.databaseUrl === undefined) {
      // Each answer that wrote waited for a sync: three nodes, at least three syncs' worth of waits.
      expect(grew('ufdl_server_durable_syncs_total', '{result="ok"}')).toBeGreaterThanOrEqual(1);
      expect(grew('ufdl_server_durable_waits_total')).toBeGreaterThanOrEqual(3);
      // A transaction joins the turn's batch (turn-batch.ts), committed by the sync after it.
      const { db, durable } = app.ufdl;
      immediateTransaction(db, () => db.prepare('UPDATE users SET last_name = last_name WHERE pk = 1').run());
      await durable.syncAfterCommit();
      const later = (await api(url, 'GET', '/metrics')).text;
      expect(sample(later, 'ufdl_server_write_batches_total')! - sample(after, 'ufdl_server_write_batches_total')!).toBeGreaterThanOrEqual(1);
      expect(grew('ufdl_server_durable_sync_seconds_total')).toBeGreaterThan(0);
    } else {
      // PostgreSQL commits are durable when they return: nothing waits for a sync.
      expect(grew('ufdl_server_durable_syncs_total', '{result="ok"}')).toBe(0);
      expect(sample(after, 'ufdl_server_write_batches_total')).toBe(0);
    }
    expect(sample(after, 'ufdl_server_durable_syncs_total', '{result="failed"}')).toBe(0);
    expect(grew('ufdl_server_event_loop_busy_seconds_total')).toBeGreaterThan(0);
  });

  it('keeps the counters of two servers in one process apart', async () => {
    const a = await start();
    const b = await start();
    await api(a.url, 'GET', '/livez');
    await api(a.url, 'GET', '/livez');
    await api(b.url, 'GET', '/livez');
    expect(sample((await api(a.url, 'GET', '/metrics')).text, 'ufdl_server_http_requests_total', LIVEZ_200)).toBe(2);
    expect(sample((await api(b.url, 'GET', '/metrics')).text, 'ufdl_server_http_requests_total', LIVEZ_200)).toBe(1);
  });

  it('still answers when the database is gone', async () => {
    const { app, url } = await start();
    app.ufdl.db.close();
    const res = await api(url, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toContain('ufdl_server_uptime_seconds');
  });
});

describe(`GET ${CAPABILITIES_PATH}`, () => {
  it('describes the extensions and limits of this server', async () => {
    const { url } = await start({ maxBodyBytes: 4096, maxOutputBytes: 1 << 20, lostAfterSeconds: 120, allowAnonymousWebsocket: true, maxLiveLogBytes: 1 << 24 });
    const res = await api(url, 'GET', CAPABILITIES_PATH);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      server: 'ufdl-agent',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      extensions: {
        wait: { max_seconds: MAX_WAIT_SECONDS, pk_exclusions: true },
        lost_node: { lost_after_seconds: 120 },
        websocket: { auth: false },
        live_logs: { max_bytes: 1 << 24, append_max_bytes: 1024 * 1024 },
        dashboard: { path: '/ui/' },
        waiting_reasons: { path: '/v1/ufdl-agent/jobs/{pk}/waiting' },
      },
      limits: { max_output_bytes: 1 << 20, max_body_bytes: 4096 },
    });
  });

  it('answers the JSON 404 of an unknown route in strict-reference mode, like the reference', async () => {
    const { url } = await start({ extensions: false });
    const res = await api(url, 'GET', CAPABILITIES_PATH);
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ detail: `Not found: GET ${CAPABILITIES_PATH}` });
  });
});
