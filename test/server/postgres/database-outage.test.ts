/**
 * The server on PostgreSQL when its database goes away (issue 14): connections killed under it (a
 * database restart, a fail-over of a managed PostgreSQL) cost at most one 503 per connection, never a
 * crash, and the server carries on — requests, wake-ups across replicas and the sweep's leadership —
 * on new connections; a database that is down answers 503 `UFDL_ERR_SERVER_DATABASE` while the
 * process stays alive and says so in its health checks.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../src/protocol/errors.js';
import { createJob, importTemplate, shellTemplate } from '../../helpers/agent.js';
import { usePgCluster } from '../../helpers/postgres.js';
import { api, startTestServer, type TestServer } from '../../helpers/server.js';
import { until } from '../../helpers/wait.js';

const cluster = usePgCluster();
let databases = 0;

async function killConnections(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: cluster.get().url });
  await client.connect();
  try {
    const name = new URL(databaseUrl).pathname.slice(1);
    const { rows } = await client.query<{ killed: boolean }>(
      'SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    return rows.filter((r) => r.killed).length;
  } finally {
    await client.end();
  }
}

async function maintenance(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: cluster.get().url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const list = (server: TestServer, headers: Record<string, string> = {}) => api(server.url, 'POST', '/v1/jobs/list', { token: server.adminToken, json: {}, headers });

describe('the server when its PostgreSQL connections die', () => {
  it('answers at most a 503 per killed connection, then serves on a new one', async () => {
    const databaseUrl = await cluster.get().createDatabase(`outage_${++databases}`);
    const server = await startTestServer({ databaseUrl });
    expect((await list(server)).status).toBe(200);
    expect(await killConnections(databaseUrl)).toBeGreaterThanOrEqual(3);
    const statuses: number[] = [];
    await until(async () => {
      const res = await list(server);
      statuses.push(res.status);
      if (res.status === 503) expect(res.body.detail).toBe(ERROR_CODES.UFDL_ERR_SERVER_DATABASE.doc);
      return res.status === 200;
    }, 30_000, 'a list to succeed again');
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(statuses.length).toBeLessThanOrEqual(2);
    // Writes too, on the new connection.
    const created = await api(server.url, 'POST', '/v1/users/create', { token: server.adminToken, json: { username: 'after-outage', password: 'a-long-password-1', email: 'a@example.org' } });
    expect(created.status, created.text).toBeLessThan(300);
  });

  it('wakes a node on one replica for a job made on another after their connections were killed', async () => {
    const databaseUrl = await cluster.get().createDatabase(`outage_${++databases}`);
    const a = await startTestServer({ databaseUrl });
    const b = await startTestServer({ databaseUrl });
    await killConnections(databaseUrl);
    // Both serve again (their request connections reconnect) ...
    for (const server of [a, b]) await until(async () => (await list(server)).status === 200, 30_000, 'the replica to serve again');
    // ... and the relay listens again: a node waiting on B is woken by a job made on A.
    const template = await importTemplate(a, shellTemplate('after-the-outage', 'true'));
    const waiting = list(b, { 'x-ufdl-wait': '60' });
    // Let the poll reach B and wait there; a job made before would simply be listed.
    await new Promise((r) => setTimeout(r, 1_000));
    const created = Date.now();
    const pk = await createJob(a, template);
    const answer = await waiting;
    expect((answer.body as { pk: number }[]).map((j) => j.pk)).toContain(pk);
    // Woken by the relayed event, not answered when the wait ran out.
    expect(Date.now() - created).toBeLessThan(45_000);
  }, 120_000);

  it('answers 503 while its database refuses connections, stays alive and not ready, and serves again after', async () => {
    const databaseUrl = await cluster.get().createDatabase(`outage_${++databases}`);
    const server = await startTestServer({ databaseUrl });
    const name = new URL(databaseUrl).pathname.slice(1);
    await maintenance(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await killConnections(databaseUrl);
    try {
      for (let i = 0; i < 3; i++) {
        const res = await list(server);
        expect(res.status).toBe(503);
        expect(res.body.detail).toBe(ERROR_CODES.UFDL_ERR_SERVER_DATABASE.doc);
      }
      expect((await api(server.url, 'GET', '/readyz')).status).toBe(503);
      expect((await api(server.url, 'GET', '/livez')).status).toBe(200);
    } finally {
      await maintenance(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    }
    await until(async () => (await list(server)).status === 200, 30_000, 'the server to serve again');
    expect((await api(server.url, 'GET', '/readyz')).status).toBe(200);
  });
});
