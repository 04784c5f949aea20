/**
 * The dashboard in a real browser (Chromium, headless) against a real server and a real agent: a
 * refused login, then log in, see a new job appear and its progress bar move, open it and see the
 * log grow and the loss curve draw, download an output, cancel a running job, submit a job from a
 * template's form (and see the server's refusal beside the field it names), and the nodes page.
 *
 * `UFDL_SCREENSHOTS=docs/images` saves a screenshot of each page there (the README shows them).
 * Without Chromium these tests fail, saying how to install it; `UFDL_SKIP_BROWSER_TESTS=1` skips
 * them visibly instead (test/helpers/browser.ts).
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createJob, getJob, importTemplate, shellTemplate, startTestAgent, until, waitForJob } from '../helpers/agent.js';
import { logInAsAdmin, SKIP_BROWSER_TESTS, useBrowser } from '../helpers/browser.js';
import { ADMIN_USER, api, startTestServer, type TestServer } from '../helpers/server.js';

/** A stand-in for a training run: a log line and a progress marker with loss and accuracy per epoch. */
const TRAINING = [
  'set -eu',
  'epochs=${epochs}',
  'i=0',
  'while [ "$i" -lt "$epochs" ]; do',
  '  i=$((i + 1))',
  '  sleep ${pause}',
  '  echo "epoch $i/$epochs: 1000 batches, lr=${lr}"',
  '  awk -v i=$i -v n=$epochs \'BEGIN { printf "UFDL-PROGRESS %.3f {\\"epoch\\": %d, \\"loss\\": %.4f, \\"acc\\": %.4f}\\n", i / n, i, 1 / (i + 0.5), 1 - 1 / (i + 1) }\'',
  'done',
  'printf "model after %s epochs\\n" "$epochs" > "$UFDL_OUTPUT_DIR/model.bin"',
].join('\n');

function trainingTemplate(): Record<string, unknown> {
  return shellTemplate('train-demo', TRAINING, {
    epochs: { types: ['int'], default: 8, help: 'How many epochs to train for.' },
    pause: { types: ['float'], default: 0.3, help: 'Seconds per epoch.' },
    lr: { types: ['float'], default: 0.01, help: 'Learning rate.' },
  });
}

/** A predict-like template with an input that must name an existing job output. */
function predictTemplate(): Record<string, unknown> {
  const spec = shellTemplate('predict-demo', 'cat "$UFDL_INPUT_DIR"/* > /dev/null; echo predicted', {});
  (spec.specific as Record<string, unknown>).inputs = [{ name: 'model', types: ['JobOutput<BLOB>'], help: 'The model output of a train-demo job.' }];
  return spec;
}

const SCREENSHOTS = process.env.UFDL_SCREENSHOTS ? resolve(process.env.UFDL_SCREENSHOTS) : undefined;

async function screenshot(page: Page, name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** `aria-valuenow` of a job's progress bar in the jobs table. */
async function tableProgress(page: Page, pk: number): Promise<number> {
  return Number(await page.locator(`tr[data-job="${pk}"] [role=progressbar]`).getAttribute('aria-valuenow'));
}

interface Session {
  server: TestServer;
  page: Page;
  training: number;
  predict: number;
}

// Each test starts a server, an agent and a page: minutes, not seconds, on a loaded 2-core machine.
describe.skipIf(SKIP_BROWSER_TESTS)('the dashboard in a browser', { timeout: 240_000 }, () => {
  const browser = useBrowser();

  /** A server with the two templates, an agent, and a page logged in as the admin. */
  async function loggedIn(): Promise<Session> {
    const server = await startTestServer();
    const training = await importTemplate(server, trainingTemplate());
    const predict = await importTemplate(server, predictTemplate());
    await startTestAgent(server, { progressIntervalMs: 100 });
    const page = await browser().context.newPage();
    onTestFinished(() => page.close());
    await logInAsAdmin(page, server.url);
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    return { server, page, training, predict };
  }

  it('refuses a wrong password, with the reason', async () => {
    const server = await startTestServer();
    const page = await browser().context.newPage();
    onTestFinished(() => page.close());
    await page.goto(`${server.url}/ui/`);
    await screenshot(page, 'login');
    await page.getByLabel('User').fill(ADMIN_USER);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Log in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toContain('No active account found with the given credentials');
    // Still on the login form, and nothing was stored.
    expect(await page.getByRole('button', { name: 'Log in' }).isVisible()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  });

  it('shows a new job appear, its progress move, its log grow and its loss curve draw; downloads its output', async () => {
    const { server, page, training } = await loggedIn();
    // Created through the API while the page is open: it arrives through the live feed.
    const pk = await createJob(server, training, { parameter_values: { epochs: { value: 12, type: 'int' }, pause: { value: 0.4, type: 'float' } } });
    const row = page.locator(`tr[data-job="${pk}"]`);
    await row.waitFor({ timeout: 20_000 });
    await until(async () => (await tableProgress(page, pk)) > 0, 30_000, 'the progress bar to leave 0');
    const first = await tableProgress(page, pk);
    await until(async () => (await tableProgress(page, pk)) > first, 30_000, 'the progress bar to move');
    await screenshot(page, 'jobs');

    await row.getByRole('link', { name: String(pk) }).click();
    await page.getByRole('heading', { name: `Job ${pk}` }).waitFor();
    const log = page.getByTestId('log');
    await until(async () => ((await log.textContent()) ?? '').includes('epoch 3/12'), 30_000, 'the log to show epoch 3');
    await until(async () => ((await log.textContent()) ?? '').includes('epoch 6/12'), 30_000, 'the log to grow to epoch 6');
    const loss = page.locator('figure[data-series="loss"] path.line');
    await loss.waitFor({ timeout: 30_000 });
    const segments = async () => ((await loss.getAttribute('d')) ?? '').split('L').length;
    const drawn = await segments();
    expect(drawn).toBeGreaterThanOrEqual(2);
    await until(async () => (await segments()) > drawn, 30_000, 'the loss curve to grow');
    expect(await page.locator('figure[data-series="acc"]').count()).toBe(1);

    await waitForJob(server, pk, (j) => j.end_time !== null, 60_000);
    const button = page.getByRole('button', { name: 'Download model.bin' });
    await button.waitFor({ timeout: 20_000 });
    await screenshot(page, 'job');
    const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
    expect(download.suggestedFilename()).toBe('model.bin');
    expect(await readFile((await download.path())!, 'utf8')).toBe('model after 12 epochs\n');
    // The log the page showed is the job's log output.
    const res = await fetch(`${server.url}/v1/jobs/${pk}/outputs/log/BLOB`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    expect(await log.textContent()).toBe(await res.text());
  });

  it('cancels a running job after asking', async () => {
    const { server, page, training } = await loggedIn();
    const pk = await createJob(server, training, { parameter_values: { epochs: { value: 200, type: 'int' }, pause: { value: 0.5, type: 'float' } } });
    await page.goto(`${server.url}/ui/#/jobs/${pk}`);
    await page.getByRole('heading', { name: `Job ${pk}` }).waitFor();
    await until(async () => (await getJob(server, pk)).start_time !== null, 30_000, 'the job to start');
    await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(`Cancel job ${pk}?`);
    await dialog.getByRole('button', { name: 'Cancel the job' }).click();
    await page.locator('#job-title .state.cancelled').waitFor({ timeout: 20_000 });
    expect((await getJob(server, pk)).is_cancelled).toBe(true);
  });

  it("submits a job from a template's form, showing the server's refusal beside its field", async () => {
    const { server, page, predict } = await loggedIn();
    await page.goto(`${server.url}/ui/#/templates`);
    await page.getByRole('link', { name: 'train-demo' }).waitFor();
    await screenshot(page, 'templates');
    await page.getByRole('link', { name: 'train-demo' }).click();
    await page.getByRole('heading', { name: /train-demo/ }).waitFor();
    // Defaults are filled in and typed.
    expect(await page.getByLabel(/^epochs/).inputValue()).toBe('8');
    expect(await page.getByLabel(/^epochs/).getAttribute('type')).toBe('number');
    await page.getByLabel(/^epochs/).fill('3');
    await page.getByLabel(/^pause/).fill('0.1');
    await page.getByLabel('Description').fill('from the form');
    await screenshot(page, 'template');
    await page.getByRole('button', { name: 'Submit job' }).click();
    await page.waitForURL(/#\/jobs\/\d+$/);
    const pk = Number(/#\/jobs\/(\d+)$/.exec(page.url())![1]);
    await page.getByRole('heading', { name: `Job ${pk}` }).waitFor();
    const job = await waitForJob(server, pk, (j) => j.end_time !== null, 60_000);
    expect(job.error_reason).toBeNull();
    const detail = await api(server.url, 'GET', `/v1/jobs/${pk}`, { token: server.adminToken });
    expect(detail.body).toMatchObject({ description: 'from the form', parameter_values: { epochs: { value: 3, type: 'int' } } });

    // The server checks an input the browser cannot: the output pk must exist.
    await page.goto(`${server.url}/ui/#/templates/${predict}`);
    await page.getByLabel(/^model/).fill('99999');
    await page.getByRole('button', { name: 'Submit job' }).click();
    const error = page.locator('#field-input-model-error');
    await error.waitFor();
    expect(await error.textContent()).toContain('no job output with pk 99999');
    expect(page.url()).toContain(`#/templates/${predict}`);
  });

  it('lists the nodes with their hardware and current job, reachable by keyboard', async () => {
    const { server, page } = await loggedIn();
    await page.goto(`${server.url}/ui/#/nodes`);
    const row = page.locator('tr[data-node]').first();
    await row.waitFor({ timeout: 20_000 });
    expect(await row.textContent()).toContain('127.0.0.1');
    expect(await row.textContent()).toContain('alive');
    await screenshot(page, 'nodes');
    // The main links are reachable with Tab and named.
    await page.locator('body').focus();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Jobs');
  });
});
