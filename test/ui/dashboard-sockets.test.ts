/**
 * The dashboard's web-sockets in a real browser: the access token travels in the handshake's
 * subprotocol (`bearer.<token>`), never in the URL, where a reverse proxy's access log (or the
 * server's own log of a failed request) would keep it; and the page stays live that way.
 */
import type { WebSocket as PageSocket } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { until } from '../helpers/agent.js';
import { launchBrowser, SKIP_BROWSER_TESTS, type TestBrowser } from '../helpers/browser.js';
import { buildOnce } from '../helpers/build.js';
import { startWithFixtures } from '../helpers/fixtures.js';
import { ADMIN_PASSWORD, ADMIN_USER } from '../helpers/server.js';

describe.skipIf(SKIP_BROWSER_TESTS)("the dashboard's web-sockets", { timeout: 180_000 }, () => {
  let browser: TestBrowser;

  beforeAll(async () => {
    browser = await launchBrowser();
    await buildOnce();
  }, 240_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('carry the token out of the URL, and still bring the jobs table and a job page their updates', async () => {
    const f = await startWithFixtures();
    const job = f.job({ description: 'watched' });
    const node = f.node();
    const page = await browser.context.newPage();
    onTestFinished(() => page.close());
    const sockets: PageSocket[] = [];
    page.on('websocket', (socket) => sockets.push(socket));
    const opened = (path: string) => sockets.some((s) => new URL(s.url()).pathname === path);

    await page.goto(`${f.url}/ui/`);
    await page.getByLabel('User').fill(ADMIN_USER);
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
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
});
