/**
 * A replica of this version serving while a newer one migrates the shared database (a rolling
 * upgrade): a migration that adds a column changes what `SELECT *` returns, and PostgreSQL refuses to
 * run a statement prepared before with its old result type ("cached plan must not change result
 * type"). The serving replica must carry on, not answer 500 until it is restarted.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createJob, importTemplate, shellTemplate } from '../../helpers/agent.js';
import { usePgCluster } from '../../helpers/postgres.js';
import { api, startTestServer } from '../../helpers/server.js';

const cluster = usePgCluster();

async function migrateAsANewerVersion(url: string, tables: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const table of tables) await client.query(`ALTER TABLE ${table} ADD COLUMN added_by_a_newer_version TEXT`);
  } finally {
    await client.end();
  }
}

describe('a replica serving while a newer one adds columns', () => {
  it('reads and writes the changed tables again at once', async () => {
    const url = await cluster.get().createDatabase('rolling_upgrade');
    const server = await startTestServer({ databaseUrl: url });
    const template = await importTemplate(server, shellTemplate('before-the-upgrade', 'true'));
    const pk = await createJob(server, template);
    const read = () => api(server.url, 'GET', `/v1/jobs/${pk}`, { token: server.adminToken });
    expect((await read()).status).toBe(200);
    await migrateAsANewerVersion(url, ['jobs', 'users']);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await read()).status);
    // A transition too: its statements run inside a transaction.
    const cancelled = await api(server.url, 'DELETE', `/v1/jobs/${pk}/cancel`, { token: server.adminToken });
    statuses.push(cancelled.status);
    const listed = await api(server.url, 'POST', '/v1/users/list', { token: server.adminToken, json: {} });
    statuses.push(listed.status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
  });

  it('fails the one transition that meets the change first as a 503 the client retries, then serves on', async () => {
    const url = await cluster.get().createDatabase('rolling_upgrade_transition');
    const server = await startTestServer({ databaseUrl: url });
    const template = await importTemplate(server, shellTemplate('before-the-upgrade', 'true'));
    const pk = await createJob(server, template);
    expect((await api(server.url, 'GET', `/v1/jobs/${pk}`, { token: server.adminToken })).status).toBe(200);
    await migrateAsANewerVersion(url, ['jobs']);
    // The statement that meets it runs inside the transition's transaction, which PostgreSQL has
    // aborted: the transition cannot run again there, and its outcome is a rollback.
    const first = await api(server.url, 'DELETE', `/v1/jobs/${pk}/cancel`, { token: server.adminToken });
    expect(first.status, first.text).toBe(503);
    const again = await api(server.url, 'DELETE', `/v1/jobs/${pk}/cancel`, { token: server.adminToken });
    expect(again.status, again.text).toBe(200);
    expect((await api(server.url, 'GET', `/v1/jobs/${pk}`, { token: server.adminToken })).status).toBe(200);
  });
});
