/**
 * The dashboard's session in a real browser: a refresh of the access token that fails on the server's
 * side (a reverse proxy's 502 while the server restarts, a 503 while its database is out of reach)
 * keeps the user logged in, and the refresh is tried again; only a refused refresh token logs out.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { until } from '../helpers/agent.js';
import { logInAsAdmin, SKIP_BROWSER_TESTS, useBrowser } from '../helpers/browser.js';
import { ADMIN_USER, api, startTestServer } from '../helpers/server.js';

describe.skipIf(SKIP_BROWSER_TESTS)("the dashboard's session", { timeout: 180_000 }, () => {
  const browser = useBrowser();

  it('outlives a refresh that the server could not answer', async () => {
    // Access tokens of 20 s: the page refreshes its token before opening each web-socket (it does
    // when less than 30 s are left), so the first one is refreshed as soon as the jobs page opens.
    const server = await startTestServer({ accessTokenSeconds: 20 });
    const page = await browser().context.newPage();
    onTestFinished(() => page.close());
    let refreshes = 0;
    await page.route('**/v1/auth/refresh', async (route) => {
      refreshes++;
      // The first refresh meets the proxy in front of a restarting server; the next ones get through.
      if (refreshes === 1) await route.fulfill({ status: 502, contentType: 'text/html', body: '<html><body>502 Bad Gateway</body></html>' });
      else await route.continue();
    });
    await logInAsAdmin(page, server.url);
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    const loginForm = page.getByRole('button', { name: 'Log in' });
    await until(async () => refreshes >= 2 || (await loginForm.isVisible()), 60_000, 'a second refresh, or the login form');
    expect(await loginForm.isVisible(), 'logged out by a refresh the server could not answer').toBe(false);
    expect(await page.evaluate(() => sessionStorage.getItem('ufdl-dashboard-session'))).not.toBeNull();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();

    // A refresh token the server refuses (a password change revoked it) still ends the session.
    const changed = await api(server.url, 'POST', `/v1/users/${ADMIN_USER}/set-password`, { token: server.adminToken, json: { password: 'a-new-password-for-tests' } });
    expect(changed.status, changed.text).toBe(200);
    await page.goto(`${server.url}/ui/#/nodes`);
    await loginForm.waitFor({ timeout: 60_000 });
    expect(await page.evaluate(() => sessionStorage.getItem('ufdl-dashboard-session'))).toBeNull();
  });
});
