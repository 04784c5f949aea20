/**
 * The dashboard's web-sockets in a real browser: the access token travels in the handshake's
 * subprotocol (`bearer.<token>`), never in the URL, where a reverse proxy's access log (or the
 * server's own log of a failed request) would keep it; and the page stays live that way. A job's log
 * view follows the job's next run after a reset, not only the run it opened on.
 */
import type { WebSocket as PageSocket } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { until } from '../helpers/agent.js';
import { logInAsAdmin, SKIP_BROWSER_TESTS, useBrowser } from '../helpers/browser.js';
import { startWithFixtures } from '../helpers/fixtures.js';

describe.skipIf(SKIP_BROWSER_TESTS)("the dashboard's web-sockets", { timeout: 180_000 }, () => {
  const browser = useBrowser();

  it('carry the token out of the URL, and still bring the jobs table and a job page their updates', async () => {
    const f = await startWithFixtures();
    const job = f.job({ description: 'watched' });
    const node = f.node();
    const page = await browser().context.newPage();
    onTestFinished(() => page.close());
    const sockets: PageSocket[] = [];
    page.on('websocket', (socket) => sockets.push(socket));
    const opened = (path: string) => sockets.some((s) => new URL(s.url()).pathname === path);

    await logInAsAdmin(page, f.url);
    await page.locator(`tr[data-job="${job}"]`).waitFor();
    await until(() => opened('/v1/ufdl-agent/events'), 30_000, 'the feed to be opened');
    // The feed is live: a job started elsewhere shows as running in the table.
    await f.startAs(node, job);
    await page.locator(`tr[data-job="${job}"] .state.running`).waitFor({ timeout: 30_000 });

    await page.goto(`${f.url}/ui/#/jobs/${job}`);
    await page.getByRole('heading', { name: `Job ${job}` }).waitFor();
    await until(() => opened(`/v1/jobs/${job}`) && opened(`/v1/jobs/${job}/log`), 30_000, "the job's channel and log to be opened");
    // The job's channel is live: a progress report moves the bar.
    const bar = page.getByRole('progressbar', { name: `Progress of job ${job}` });
    expect((await f.call('POST', `/v1/jobs/${job}/progress/0.5`, { node, json: { loss: 0.25 } })).status).toBe(200);
    await until(async () => (await bar.getAttribute('aria-valuenow')) === '50', 30_000, 'the progress bar to reach 50%');

    for (const socket of sockets) expect(new URL(socket.url()).search, socket.url()).not.toMatch(/token=/);
  });

  it("tell a job's page that its job was hard-deleted: the page says so instead of showing the job as it was", async () => {
    const f = await startWithFixtures();
    const job = f.job({ description: 'doomed' });
    const node = f.node();
    await f.startAs(node, job);
    const page = await browser().context.newPage();
    onTestFinished(() => page.close());
    const sockets: PageSocket[] = [];
    page.on('websocket', (socket) => sockets.push(socket));
    const opened = (path: string) => sockets.filter((s) => new URL(s.url()).pathname === path).length;
    await logInAsAdmin(page, f.url);
    await page.goto(`${f.url}/ui/#/jobs/${job}`);
    await page.getByRole('heading', { name: `Job ${job}` }).waitFor();
    await until(() => opened(`/v1/jobs/${job}`) === 1 && opened(`/v1/jobs/${job}/log`) === 1, 30_000, "the job's channel and log to be opened");

    expect((await f.call('DELETE', `/v1/jobs/${job}/hard`)).status).toBe(200);
    await page.getByRole('alert').filter({ hasText: /not found/i }).waitFor({ timeout: 30_000 });
    expect(await page.getByRole('heading', { name: `Job ${job}` }).count()).toBe(0);
    // Refused for good: neither socket is opened again.
    expect(opened(`/v1/jobs/${job}`)).toBe(1);
    expect(opened(`/v1/jobs/${job}/log`)).toBe(1);
  });

  it('keep a filtered jobs table as a reload would show it: a job that starts joins the running view, one that ends leaves it', async () => {
    const f = await startWithFixtures();
    const [older, newer, other] = [f.job(), f.job(), f.job()];
    const node = f.node();
    const page = await browser().context.newPage();
    onTestFinished(() => page.close());
    await logInAsAdmin(page, f.url);
    await page.locator(`tr[data-job="${other}"]`).waitFor();
    await page.getByLabel('State').selectOption('running');
    const count = page.getByText(/^\d+ jobs?$/);
    await until(async () => (await count.textContent()) === '0 jobs', 30_000, 'the running view to be empty');
    const shown = async () => page.locator('tr[data-job]').evaluateAll((rows) => rows.map((row) => Number(row.getAttribute('data-job'))));

    // Started elsewhere while the view is open: each takes its place by pk, newest first.
    await f.startAs(node, newer);
    await page.locator(`tr[data-job="${newer}"] .state.running`).waitFor({ timeout: 30_000 });
    const second = f.node();
    await f.startAs(second, older);
    await until(async () => (await shown()).join() === [newer, older].join(), 30_000, `jobs ${newer} and ${older} to show, newest first`);
    expect(await count.textContent()).toBe('2 jobs');

    // One ends: it leaves the running view.
    expect((await f.call('POST', `/v1/jobs/${newer}/finish`, { node, json: {} })).status).toBe(200);
    await until(async () => (await shown()).join() === String(older), 30_000, `job ${newer} to leave the running view`);
    expect(await count.textContent()).toBe('1 job');
    // What loading the page again would show.
    const table = await f.call('POST', '/v1/ufdl-agent/jobs/table', { json: { state: 'running' } });
    expect((JSON.parse(table.text) as { rows: { pk: number }[]; total: number }).rows.map((row) => row.pk)).toEqual(await shown());
  });

  it("follow the new run's log after a failed job is reset and runs again", async () => {
    const f = await startWithFixtures();
    const job = f.job();
    const node = f.node();
    const append = (offset: number, text: string) =>
      f.call('POST', `/v1/jobs/${job}/log?offset=${offset}&max_bytes=${1024 * 1024}`, {
        node,
        body: new Uint8Array(Buffer.from(text)),
        headers: { 'content-type': 'application/octet-stream' },
      });
    const ok = async (res: Promise<{ status: number; text: string }>) => {
      const r = await res;
      expect(r.status, r.text).toBe(200);
    };
    await f.startAs(node, job);
    await ok(append(0, 'first run\n'));
    await ok(f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { success: false, error: 'out of memory' } }));

    const page = await browser().context.newPage();
    onTestFinished(() => page.close());
    await logInAsAdmin(page, f.url, `/ui/#/jobs/${job}`);
    const log = page.getByTestId('log');
    await until(async () => ((await log.textContent()) ?? '').includes('first run'), 30_000, 'the log of the first run');
    await page.locator('#job-title .state.errored').waitFor();

    // What the page's Reset does, then the job runs again and prints.
    await ok(f.call('DELETE', `/v1/jobs/${job}/reset`, { node }));
    await ok(f.call('DELETE', `/v1/jobs/${job}/release`, { node }));
    await f.startAs(node, job);
    await page.locator('#job-title .state.running').waitFor({ timeout: 30_000 });
    await ok(append(0, 'second run\n'));
    await until(async () => ((await log.textContent()) ?? '').includes('second run'), 30_000, "the log of the second run");
    expect(await log.textContent()).not.toContain('first run');
  });
});
