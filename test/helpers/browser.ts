/**
 * A real browser for the dashboard tests: Debian's Chromium (`/usr/bin/chromium`, or
 * `UFDL_CHROMIUM`), headless, driven by playwright-core, with a fresh profile per test file. No
 * browser is ever downloaded: `.ci/run` installs the `chromium` package.
 *
 * Without Chromium the tests fail with a message saying how to install it. A developer without it
 * may set `UFDL_SKIP_BROWSER_TESTS=1`: the browser tests are then reported as skipped (never as
 * passed), so the gap stays visible.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { buildOnce } from './build.js';
import { ADMIN_PASSWORD, ADMIN_USER } from './server.js';

export const CHROMIUM = process.env.UFDL_CHROMIUM ?? '/usr/bin/chromium';

/** True when the browser tests are to be skipped on purpose (`UFDL_SKIP_BROWSER_TESTS=1`). */
export const SKIP_BROWSER_TESTS = process.env.UFDL_SKIP_BROWSER_TESTS === '1';

export interface TestBrowser {
  browser: Browser;
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `The dashboard tests need Chromium at ${CHROMIUM} and it is missing. Install it with ` +
        "'apt-get install -y chromium' (.ci/run does), point UFDL_CHROMIUM at another Chromium, or set " +
        'UFDL_SKIP_BROWSER_TESTS=1 to skip these tests (they are then reported as skipped).',
    );
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true, colorScheme: 'light' });
  // Playwright's 30 s for an action or a wait is too short for a loaded 2-core machine.
  context.setDefaultTimeout(90_000);
  return {
    browser,
    context,
    async close() {
      await context.close().catch(() => undefined);
      await browser.close().catch(() => undefined);
    },
  };
}

/**
 * Inside a `describe`: a browser launched (and `dist/` built, which the pages come from) before its
 * tests and closed after them. Returns the browser, to be called in the tests.
 */
export function useBrowser(): () => TestBrowser {
  let launched: TestBrowser | undefined;
  beforeAll(async () => {
    launched = await launchBrowser();
    await buildOnce();
  }, 240_000);
  afterAll(async () => {
    await launched?.close();
  });
  return () => {
    if (!launched) throw new Error('the browser is not launched: call useBrowser() inside a describe');
    return launched;
  };
}

/** Open the dashboard at `path` (its login form first) and log in as the admin. */
export async function logInAsAdmin(page: Page, serverUrl: string, path = '/ui/'): Promise<void> {
  await page.goto(`${serverUrl}${path}`);
  await page.getByLabel('User').fill(ADMIN_USER);
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
}
