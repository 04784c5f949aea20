/**
 * The server side of the dashboard: its static files (with their security headers), the paged jobs
 * table, the live feed, and download tickets; none of it in strict reference mode.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import type { FeedFrame, JobPage } from '../../src/protocol/dashboard.js';
import { startWithFixtures, type Fixtures } from '../helpers/fixtures.js';
import { api, startTestServer } from '../helpers/server.js';
import { STORE_UNDER_TEST } from '../helpers/store-under-test.js';
import { receiveJson } from '../helpers/ws-messages.js';
import { childrenOf, createPipelineJob, importPipeline, runChild } from './support/workflow-specs.js';

/** The feed as an admin's dashboard gets it, open. */
async function openFeed(f: Fixtures, url = f.url) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/ufdl-agent/events?token=${await f.adminToken()}`);
  onTestFinished(() => ws.terminate());
  const frames = receiveJson<FeedFrame>(ws);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return frames;
}

async function table(f: Fixtures, query: Record<string, unknown>, as?: string): Promise<{ status: number; body: JobPage & { detail?: string } }> {
  const res = await f.call<JobPage & { detail?: string }>('POST', '/v1/ufdl-agent/jobs/table', { json: query, ...(as === undefined ? {} : { as }) });
  return { status: res.status, body: res.body };
}

describe('the dashboard routes', () => {
  it('serves the page with its security headers, and leads / there', async () => {
    const f = await startWithFixtures();
    const page = await fetch(`${f.url}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = await page.text();
    const script = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${f.url}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    await asset.arrayBuffer();
    // Nothing from elsewhere: every script and stylesheet is ours.
    expect(html).not.toMatch(/(src|href)="https?:/);
    const root = await fetch(`${f.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/ui/');
    await root.arrayBuffer();
  });

  it('pages jobs newest first by pk, filtered by state and template', async () => {
    const f = await startWithFixtures();
    const other = f.template('other');
    const created = f.jobs(5);
    const theirs = f.jobs(3, { template: other });
    const node = f.node();
    await f.startAs(node, created[0]!);
    const all = await table(f, { limit: 4 });
    expect(all.status).toBe(200);
    expect(all.body.rows.map((r) => r.pk)).toEqual([theirs[2], theirs[1], theirs[0], created[4]]);
    expect(all.body).toMatchObject({ total: 8, newer: 0, has_newer: false, has_older: true });
    const older = await table(f, { limit: 4, before: created[4] });
    expect(older.body.rows.map((r) => r.pk)).toEqual([created[3], created[2], created[1], created[0]]);
    // How many are newer, not only whether any are: the page keeps that count as jobs come and go.
    expect(older.body).toMatchObject({ total: 8, newer: 4, has_older: false, has_newer: true });
    const newer = await table(f, { limit: 4, after: created[3] });
    expect(newer.body.rows.map((r) => r.pk)).toEqual([theirs[2], theirs[1], theirs[0], created[4]]);
    expect(newer.body).toMatchObject({ newer: 0, has_newer: false, has_older: true });
    const middle = await table(f, { limit: 2, after: created[2] });
    expect(middle.body.rows.map((r) => r.pk)).toEqual([created[4], created[3]]);
    expect(middle.body).toMatchObject({ total: 8, newer: 3, has_newer: true, has_older: true });
    // Past the oldest job: an empty page, every job newer.
    expect((await table(f, { limit: 4, before: created[0] })).body).toMatchObject({ rows: [], newer: 8, has_newer: true, has_older: false });
    const running = await table(f, { state: 'running' });
    expect(running.body.rows.map((r) => [r.pk, r.state, r.node])).toEqual([[created[0], 'running', node]]);
    expect((await table(f, { state: 'created', template: other })).body.total).toBe(3);
    expect((await table(f, { state: 'active' })).body.total).toBe(8);
    expect((await table(f, { state: 'finished' })).body.total).toBe(0);
  });

  it('refuses bad table queries with a JSON detail', async () => {
    const f = await startWithFixtures();
    for (const query of [{ state: 'sleeping' }, { limit: 0 }, { limit: 10_000 }, { before: 'x' }, { extra: 1 }]) {
      const res = await table(f, query);
      expect(res.status, JSON.stringify(query)).toBe(400);
      expect(res.body.detail).toEqual(expect.any(String));
    }
    expect((await f.call('POST', '/v1/ufdl-agent/jobs/table', { as: null, json: {} })).status).toBe(401);
  });

  it('pushes job creations and transitions to the feed, for authenticated users only', async () => {
    const f = await startWithFixtures();
    const template = f.template('fed');
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${f.url.replace('http', 'ws')}/v1/ufdl-agent/events`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => {});
    });
    expect(refused).toBe(401);
    const frames: FeedFrame[] = [];
    const ws = new WebSocket(`${f.url.replace('http', 'ws')}/v1/ufdl-agent/events?token=${await f.adminToken()}`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as FeedFrame));
    const res = await f.call('POST', `/v1/job-templates/${template}/create-job`, { json: { input_values: {} } });
    expect(res.status).toBe(200);
    const pk = (res.body as { pk: number }).pk;
    const node = f.node();
    await f.startAs(node, pk);
    await f.call('POST', `/v1/jobs/${pk}/progress/0.5`, { node, json: { loss: 0.25 } });
    const deadline = Date.now() + 10_000;
    while (frames.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    ws.close();
    expect(frames.map((fr) => [fr.event, fr.job.pk, fr.job.state])).toEqual([
      ['created', pk, 'created'],
      ['acquire', pk, 'created'],
      ['start', pk, 'running'],
      ['progress', pk, 'running'],
    ]);
    expect(frames[3]).toMatchObject({ job: { progress: 0.5, node }, data: { loss: 0.25 } });
  });

  it("announces a workflow's parent and each of its children as created, before any transition of theirs", async () => {
    const f = await startWithFixtures();
    const template = await importPipeline(f);
    const frames = await openFeed(f);
    const parent = (await createPipelineJob(f, template)).pk as number;
    const node = f.node();
    const train = (await childrenOf(f, parent)).train.pk as number;
    await runChild(f, node, train, { outputs: { 'model.bin': 'BLOB', report: 'JSON' } });
    const predict = (await childrenOf(f, parent)).predict.pk as number;
    await runChild(f, node, predict);
    // The parent's finish is the last frame.
    const deadline = Date.now() + 10_000;
    while (!frames.messages.some((fr) => fr.job.pk === parent && fr.event === 'finish') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const events = frames.messages.map((fr) => [fr.event, fr.job.pk] as const);
    // The table counts a job in at its creation: one it never heard of would never join it.
    for (const pk of [parent, train, predict]) {
      const seen = events.filter(([, job]) => job === pk).map(([event]) => event);
      expect(seen[0], `the first frame of job ${pk}: ${JSON.stringify(events)}`).toBe('created');
      expect(seen.filter((event) => event === 'created')).toHaveLength(1);
      expect(seen.at(-1)).toBe('finish');
    }
  });

  it("pushes a job's soft delete, reinstate and hard delete to the feed, once each, with the job as it left it", async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job({ description: 'doomed' });
    await f.startAs(node, job);
    const frames = await openFeed(f);
    const ok = async (path: string, status: number) => expect((await f.call('DELETE', path)).status, path).toBe(status);

    await ok(`/v1/jobs/${job}`, 204);
    // Deleting a deleted job changes nothing: no second frame (the next one is the reinstate's).
    await ok(`/v1/jobs/${job}`, 204);
    await ok(`/v1/jobs/${job}/reinstate`, 200);
    await ok(`/v1/jobs/${job}/hard`, 200);
    await frames.received(3);
    expect(frames.messages.map((fr) => [fr.event, fr.job.pk, fr.job.deleted, fr.job.state])).toEqual([
      ['delete', job, true, 'running'],
      ['reinstate', job, false, 'running'],
      // As it was: the row is gone.
      ['hard-delete', job, false, 'running'],
    ]);
    expect(frames.messages[2]!.job).toMatchObject({ description: 'doomed', node });
    // Reinstating a job that is not deleted changes nothing either, and tells nothing.
    const other = f.job();
    await ok(`/v1/jobs/${other}/reinstate`, 200);
    await ok(`/v1/jobs/${other}`, 204);
    await frames.received(4);
    expect(frames.messages.slice(3).map((fr) => [fr.event, fr.job.pk])).toEqual([['delete', other]]);
  });

  it.skipIf(STORE_UNDER_TEST !== 'postgres')('pushes a delete and a hard delete made on another replica to the feed', async () => {
    const f = await startWithFixtures();
    const other = await startTestServer({ dataDir: f.server.dataDir });
    const job = f.job({ description: 'x'.repeat(20_000) });
    const frames = await openFeed(f);
    const on = (path: string) => api(other.url, 'DELETE', path, { token: other.adminToken });
    expect((await on(`/v1/jobs/${job}`)).status).toBe(204);
    expect((await on(`/v1/jobs/${job}/hard`)).status).toBe(200);
    await frames.received(2);
    expect(frames.messages.map((fr) => [fr.event, fr.job.pk, fr.job.deleted])).toEqual([
      ['delete', job, true],
      // The row is gone everywhere: the event brought it, its long description shortened to fit.
      ['hard-delete', job, true],
    ]);
    expect(frames.messages[1]!.job.description.startsWith('xxx')).toBe(true);
    // Before the first server's teardown (it drops the database they share).
    await other.close();
  });

  it('downloads an output through a ticket valid for that output only', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job();
    await f.startAs(node, job);
    const upload = (name: string, text: string) =>
      f.call('POST', `/v1/jobs/${job}/outputs/${name}/BLOB`, { node, body: text, headers: { 'content-type': 'application/data', 'content-disposition': `attachment; filename=${name}` } });
    const model = ((await upload('model.bin', 'the model')).body as { pk: number }).pk;
    const other = ((await upload('other.bin', 'other')).body as { pk: number }).pk;
    const ticket = await f.call<{ url: string }>('POST', `/v1/ufdl-agent/outputs/${model}/ticket`);
    expect(ticket.status).toBe(200);
    const got = await fetch(`${f.url}${ticket.body.url}`);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-disposition')).toBe('attachment; filename="model.bin"');
    expect(await got.text()).toBe('the model');
    // The same ticket for another output, a forged one, none at all: 401 with a reason.
    const t = new URL(ticket.body.url, f.url).searchParams.get('ticket')!;
    for (const url of [`/v1/ufdl-agent/outputs/${other}/download?ticket=${t}`, `/v1/ufdl-agent/outputs/${model}/download?ticket=${t.slice(0, -2)}xx`, `/v1/ufdl-agent/outputs/${model}/download`]) {
      const res = await api(f.url, 'GET', url);
      expect(res.status, url).toBe(401);
      expect(res.body).toMatchObject({ detail: expect.stringContaining('ticket') });
    }
    expect((await f.call('POST', `/v1/ufdl-agent/outputs/${model}/ticket`, { as: null })).status).toBe(401);
  });

  it('downloads through a ticket that another replica of the server issued', async () => {
    // Replicas behind one address (a load balancer) share the database and the data directory: the
    // page may get its ticket from one and follow the link to the other. The ticket's key was this
    // process's own, so the other answered 401 and the download failed.
    const f = await startWithFixtures();
    const other = await startTestServer({ dataDir: f.server.dataDir });
    const node = f.node();
    const job = f.job();
    await f.startAs(node, job);
    const upload = await f.call('POST', `/v1/jobs/${job}/outputs/model.bin/BLOB`, {
      node,
      body: 'the model',
      headers: { 'content-type': 'application/data', 'content-disposition': 'attachment; filename=model.bin' },
    });
    const model = (upload.body as { pk: number }).pk;
    const ticket = await f.call<{ url: string }>('POST', `/v1/ufdl-agent/outputs/${model}/ticket`);
    expect(ticket.status).toBe(200);
    const got = await fetch(`${other.url}${ticket.body.url}`);
    expect(got.status, await got.clone().text()).toBe(200);
    expect(await got.text()).toBe('the model');
    // Before the first server's teardown (on PostgreSQL, it drops the database they share).
    await other.close();
  });

  it('is not served in strict reference mode', async () => {
    const f = await startWithFixtures({ extensions: false });
    const page = await fetch(`${f.url}/ui/`);
    expect(page.status).toBe(404);
    await page.arrayBuffer();
    expect((await f.call('POST', '/v1/ufdl-agent/jobs/table', { json: {} })).status).toBe(404);
  });
});
