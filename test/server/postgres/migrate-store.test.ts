/**
 * `ufdl-agent migrate-store`: a populated SQLite server (users, nodes, templates, jobs through their
 * lifecycle, an output with its bytes in the database) copied into a new PostgreSQL database by the
 * real command, its counts and checksums equal on both sides; a second copy into the same database,
 * and a password in the command's output, are refused or absent.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import Database from 'better-sqlite3';
import { sqliteReport } from '../../../src/server/store/postgres/copy-from-sqlite.js';
import { cli } from '../../cli/commands-support.js';
import { Fixtures, startWithFixtures } from '../../helpers/fixtures.js';
import { PG_PASSWORD, usePgCluster } from '../../helpers/postgres.js';
import { api, startTestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

const cluster = usePgCluster();

/** A data directory that outlives the server's close (the command reads it after), removed after the test. */
async function keptDataDir(): Promise<string> {
  return tempDir('ufdl-migrate-');
}

describe('migrate-store', () => {
  it('copies a populated SQLite server into PostgreSQL, proven by counts and checksums', async () => {
    const dataDir = await keptDataDir();
    const fx = await startWithFixtures({ dataDir });
    const worker = await fx.user({ name: 'worker-1' });
    const node = fx.node(worker.pk);
    const [started, , cancelled] = fx.jobs(4, { description: 'to copy' });
    await fx.startAs(node, started!, worker);
    const upload = await fx.call('POST', `/v1/jobs/${started}/outputs/model/Model%3CX%3E`, {
      as: worker,
      node,
      body: 'the model bytes',
      headers: { 'content-type': 'application/octet-stream', 'content-disposition': 'attachment; filename="model.bin"' },
    });
    expect(upload.status, upload.text).toBe(200);
    expect((await fx.call('DELETE', `/v1/jobs/${cancelled}/cancel`)).status).toBeLessThan(300);
    await fx.server.close();

    const url = await cluster.get().createDatabase(`copy_${randomUUID().replaceAll('-', '')}`);
    const withoutPassword = new URL(url);
    withoutPassword.password = '';
    const env = { UFDL_DATABASE_PASSWORD: PG_PASSWORD };
    const copied = await cli(['migrate-store', '--data', dataDir, '--to', withoutPassword.toString(), '--json'], { env });
    expect(copied.code, copied.stderr).toBe(0);
    expect(copied.stdout + copied.stderr).not.toContain(PG_PASSWORD);
    const report = JSON.parse(copied.stdout) as { tables: { table: string; rows: number; checksum: string }[] };

    const source = new Database(join(dataDir, 'ufdl.sqlite3'), { readonly: true });
    const expected = sqliteReport(source);
    source.close();
    expect(report.tables).toEqual(expected);
    const rows = Object.fromEntries(report.tables.map((t) => [t.table, t.rows]));
    expect(rows).toMatchObject({ jobs: 4, outputs: 1, blobs: 1, templates: 1, licences: 14 });
    expect(rows.users).toBeGreaterThanOrEqual(2);

    // The target now holds data: a second copy is refused and changes nothing.
    const again = await cli(['migrate-store', '--data', dataDir, '--to', withoutPassword.toString()], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not empty/);

    // A server on the copy serves what the SQLite one did: the same admin password, jobs in their
    // phases, the output's bytes; and new rows get new pks (each identity moved past the copied ones).
    const onPg = await startTestServer({ dataDir, databaseUrl: url });
    expect(onPg.adminToken).not.toBe('');
    const job = await api(onPg.url, 'GET', `/v1/jobs/${started}`, { token: onPg.adminToken });
    expect(job.body).toMatchObject({ pk: started, node, is_cancelled: false, end_time: null });
    expect(job.body.start_time).not.toBeNull();
    expect((await api(onPg.url, 'GET', `/v1/jobs/${cancelled}`, { token: onPg.adminToken })).body).toMatchObject({ is_cancelled: true });
    const download = await fetch(`${onPg.url}/v1/jobs/${started}/outputs/model/Model%3CX%3E`, { headers: { authorization: `Bearer ${onPg.adminToken}` } });
    expect(download.status).toBe(200);
    expect(await download.text()).toBe('the model bytes');
    const pgFx = new Fixtures(onPg);
    onTestFinished(() => pgFx.close());
    const next = pgFx.job();
    expect(next).toBeGreaterThan(Math.max(...[started!, cancelled!]));
    const nodeAgain = await api(onPg.url, 'POST', '/v1/nodes/list', { token: onPg.adminToken, json: {} });
    expect((nodeAgain.body as { pk: number }[]).map((n) => n.pk)).toContain(node);
  });

  it('says which password source failed, and never prints a password given in the URL', async () => {
    const dataDir = await keptDataDir();
    const fx = await startWithFixtures({ dataDir });
    await fx.server.close();
    const { port } = cluster.get();
    const wrong = await cli(['migrate-store', '--data', dataDir, '--to', `postgres://ufdl:not-the-password@127.0.0.1:${port}/postgres`], { env: {} });
    expect(wrong.code).toBe(69);
    expect(wrong.stderr).toMatch(/password authentication failed/);
    expect(wrong.stderr).not.toContain('not-the-password');
    expect(wrong.stderr).toContain('postgres://ufdl:***@127.0.0.1');
    const noFile = await cli(['migrate-store', '--data', dataDir, '--to', `postgres://ufdl@127.0.0.1:${port}/postgres`, '--password-file', join(dataDir, 'absent')], { env: {} });
    expect(noFile.code).toBe(78);
    expect(noFile.stderr).toMatch(/cannot read serve.database_password_file/);
  });
});
