/**
 * The jobs table at its page boundaries, in a real browser on a real server and feed: a job deleted
 * elsewhere leaves the open table and the next older job moves up into the page, a reinstated one
 * comes back, the paging buttons stay true; a page reached with Newer that holds the newest jobs
 * takes new ones at its top, and a page further down keeps its rows and tells of newer jobs instead.
 * Every step waits for what the page shows, and ends on what loading the page again would show.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { JobPage } from '../../src/protocol/dashboard.js';
import { until } from '../helpers/agent.js';
import { logInAsAdmin, SKIP_BROWSER_TESTS, useBrowser } from '../helpers/browser.js';
import { startWithFixtures, type Fixtures } from '../helpers/fixtures.js';

const PAGE_SIZE = 50;

/** The pks of the rows the page shows, top to bottom. */
const shown = (page: Page) => page.locator('tr[data-job]').evaluateAll((rows) => rows.map((row) => Number(row.getAttribute('data-job'))));

/** `count` pks from `from` down. */
const down = (from: number, count: number) => Array.from({ length: count }, (_, i) => from - i);

async function showsRows(page: Page, expected: number[], what: string): Promise<void> {
  await until(async () => (await shown(page)).join() === expected.join(), 30_000, what);
}

/** The page's paging buttons and job count. */
async function paging(page: Page): Promise<{ newer: boolean; older: boolean; count: string | null }> {
  return {
    newer: await page.getByRole('button', { name: 'Newer', exact: true }).isEnabled(),
    older: await page.getByRole('button', { name: 'Older', exact: true }).isEnabled(),
    count: await page.getByText(/^\d+ jobs?$/).textContent(),
  };
}

/** What the server answers for the same place: the rows a reload would show. */
async function reloaded(f: Fixtures, query: Record<string, unknown>): Promise<number[]> {
  const res = await f.call<JobPage>('POST', '/v1/ufdl-agent/jobs/table', { json: { ...query, limit: PAGE_SIZE } });
  expect(res.status, res.text).toBe(200);
  return res.body.rows.map((row) => row.pk);
}

async function ok(res: Promise<{ status: number; text: string }>): Promise<void> {
  const r = await res;
  expect(r.status, r.text).toBeLessThan(300);
}

describe.skipIf(SKIP_BROWSER_TESTS)('the jobs table at its page boundaries', { timeout: 180_000 }, () => {
  const browser = useBrowser();

  async function openTable(f: Fixtures): Promise<Page> {
    const page = await browser().context.newPage();
    onTestFinished(() => page.close());
    await logInAsAdmin(page, f.url);
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    return page;
  }

  it('drops a job deleted elsewhere and back-fills the page from past it; a reinstated job comes back; Older follows', async () => {
    const f = await startWithFixtures();
    const jobs = f.jobs(PAGE_SIZE + 1);
    const [oldest, newest] = [jobs[0]!, jobs.at(-1)!];
    const page = await openTable(f);
    await showsRows(page, down(newest, PAGE_SIZE), 'the newest page');
    expect(await paging(page)).toEqual({ newer: false, older: true, count: '51 jobs' });

    // Soft-deleted through the API: the row goes, the one older job moves up, and nothing is left past the page.
    const victim = jobs[30]!;
    await ok(f.call('DELETE', `/v1/jobs/${victim}`));
    const without = down(newest, PAGE_SIZE + 1).filter((pk) => pk !== victim);
    await showsRows(page, without, `job ${victim} to leave and job ${oldest} to move up`);
    expect(await paging(page)).toEqual({ newer: false, older: false, count: '50 jobs' });
    expect(await reloaded(f, {})).toEqual(without);

    // Reinstated: back in its place, and the oldest goes to the next page again.
    await ok(f.call('DELETE', `/v1/jobs/${victim}/reinstate`));
    await showsRows(page, down(newest, PAGE_SIZE), `job ${victim} to come back`);
    expect(await paging(page)).toEqual({ newer: false, older: true, count: '51 jobs' });

    // Hard-deleted at the top: gone, and the oldest moves up once more.
    await ok(f.call('DELETE', `/v1/jobs/${newest}/hard`));
    await showsRows(page, down(newest - 1, PAGE_SIZE), `job ${newest} to leave`);
    expect(await paging(page)).toEqual({ newer: false, older: false, count: '50 jobs' });
    expect(await reloaded(f, {})).toEqual(await shown(page));
  });

  it('back-fills the running view when a running job on it is cancelled', async () => {
    const f = await startWithFixtures();
    const jobs = f.jobs(PAGE_SIZE + 2);
    const node = f.node();
    // Running before the page opens: written straight into the database (no event to miss).
    const started = new Date().toISOString();
    const run = f.db.prepare('UPDATE jobs SET start_time = ?, node = ? WHERE pk = ?');
    for (const pk of jobs.slice(1)) run.run(started, node, pk);
    const page = await openTable(f);
    await page.getByText('52 jobs', { exact: true }).waitFor();
    await page.getByLabel('State').selectOption('running');
    // The all view shows the same rows: its count tells the two apart.
    await page.getByText('51 jobs', { exact: true }).waitFor();
    const newest = jobs.at(-1)!;
    await showsRows(page, down(newest, PAGE_SIZE), 'the newest page of the running view');
    expect(await paging(page)).toEqual({ newer: false, older: true, count: '51 jobs' });

    await ok(f.call('DELETE', `/v1/jobs/${jobs[20]}/cancel`));
    const expected = down(newest, PAGE_SIZE + 1).filter((pk) => pk !== jobs[20]);
    // jobs[0] is not running: the last running one (jobs[1]) moves up, and nothing is left past it.
    await showsRows(page, expected, `job ${jobs[20]} to leave the running view and job ${jobs[1]} to move up`);
    expect(await paging(page)).toEqual({ newer: false, older: false, count: '50 jobs' });
    expect(await reloaded(f, { state: 'running' })).toEqual(expected);
  });

  it('takes new jobs at the top of the newest page reached with Newer; a page further down tells of them instead', async () => {
    const f = await startWithFixtures();
    const template = f.template('paged');
    const jobs = f.jobs(2 * PAGE_SIZE + 20, { template });
    const newest = jobs.at(-1)!;
    const create = async () => {
      const res = await f.call<{ pk: number }>('POST', `/v1/job-templates/${template}/create-job`, { json: { input_values: {} } });
      expect(res.status, res.text).toBe(200);
      return res.body.pk;
    };
    const page = await openTable(f);
    await showsRows(page, down(newest, PAGE_SIZE), 'the newest page');
    const older = page.getByRole('button', { name: 'Older', exact: true });
    const newer = page.getByRole('button', { name: 'Newer', exact: true });
    await older.click();
    await showsRows(page, down(newest - PAGE_SIZE, PAGE_SIZE), 'the second page');
    await older.click();
    await showsRows(page, down(newest - 2 * PAGE_SIZE, 20), 'the last page');
    await newer.click();
    // 70 jobs are newer than the last page: Newer shows the 50 just above it.
    const second = down(newest - PAGE_SIZE, PAGE_SIZE);
    await showsRows(page, second, 'the second page again');
    expect(await paging(page)).toEqual({ newer: true, older: true, count: '120 jobs' });

    // The 50 newest jobs are above it: Newer shows the newest page, which takes a new job at its top.
    await newer.click();
    await showsRows(page, down(newest, PAGE_SIZE), 'the newest page');
    expect(await paging(page)).toEqual({ newer: false, older: true, count: '120 jobs' });
    const first = await create();
    await showsRows(page, down(first, PAGE_SIZE), `job ${first} to join the top of the newest page`);
    expect(await paging(page)).toEqual({ newer: false, older: true, count: '121 jobs' });
    expect(await reloaded(f, {})).toEqual(await shown(page));

    // Not the newest page: a new job does not push its rows about, it is counted in a notice.
    await older.click();
    const rows = down(first - PAGE_SIZE, PAGE_SIZE);
    await showsRows(page, rows, 'the second page');
    const notice = page.getByTestId('newer-jobs');
    expect(await notice.count()).toBe(0);
    const next = await create();
    await until(async () => (await notice.count()) === 1 && (await notice.textContent()) === '1 newer job', 30_000, 'the notice of one newer job');
    expect(await shown(page)).toEqual(rows);
    expect(await paging(page)).toEqual({ newer: true, older: true, count: '122 jobs' });
    expect(await reloaded(f, { before: rows[0]! + 1 })).toEqual(rows);

    // The notice leads to the newest page, where the new job is.
    await notice.click();
    await showsRows(page, down(next, PAGE_SIZE), 'the newest page from the notice');
    expect(await notice.count()).toBe(0);
    expect(await paging(page)).toEqual({ newer: false, older: true, count: '122 jobs' });
  });

  it('shows a change the feed told while a page was on its way, which the answer did not show yet', async () => {
    const f = await startWithFixtures();
    const jobs = f.jobs(PAGE_SIZE + 5);
    const [oldest, newest] = [jobs[0]!, jobs.at(-1)!];
    const node = f.node();
    await f.startAs(node, oldest);
    const page = await browser().context.newPage();
    onTestFinished(() => page.close());
    // The feed's frames as the page receives them.
    const frames: string[] = [];
    page.on('websocket', (socket) => socket.on('framereceived', ({ payload }) => void frames.push(String(payload))));
    await logInAsAdmin(page, f.url);
    await showsRows(page, down(newest, PAGE_SIZE), 'the newest page');

    // The older page's answer is computed at once but held back, and the job on it progresses
    // meanwhile: the feed tells the page before the answer arrives.
    let computed!: () => void;
    const answerComputed = new Promise<void>((resolve) => (computed = resolve));
    let deliver!: () => void;
    const delivery = new Promise<void>((resolve) => (deliver = resolve));
    await page.route('**/v1/ufdl-agent/jobs/table', async (route) => {
      const response = await route.fetch();
      computed();
      await delivery;
      await route.fulfill({ response });
    }, { times: 1 });
    await page.getByRole('button', { name: 'Older', exact: true }).click();
    await answerComputed;
    await ok(f.call('POST', `/v1/jobs/${oldest}/progress/0.5`, { node, json: {} }));
    await until(async () => frames.some((frame) => frame.includes(`"pk":${oldest}`) && frame.includes('"progress":0.5')), 30_000, 'the feed to tell the page of the progress');
    deliver();

    await showsRows(page, down(newest - PAGE_SIZE, 5), 'the older page');
    // Before, the page showed the answer's row as it was when computed, until the job's next event.
    const bar = page.getByRole('progressbar', { name: `Progress of job ${oldest}` });
    await until(async () => (await bar.getAttribute('aria-valuenow')) === '50', 30_000, `job ${oldest} to show its progress`);
  });
});
