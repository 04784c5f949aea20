/**
 * The one list of routes that the bad-input suite and the fault storm send bad input to
 * (test/helpers/routes.ts) is the server's: a route the server registers that the list lacks, or a
 * listed route the server no longer has, fails here.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { registeredRoutes, routeShape, ROUTES, STATIC_ROUTES } from '../helpers/routes.js';
import { tempDir } from '../helpers/temp-dir.js';

async function printedRoutes(extensions: boolean): Promise<string> {
  const dataDir = await tempDir('ufdl-routes-');
  const { app } = await buildApp({ dataDir, extensions, adminPassword: 'route-list-password', logLevel: false });
  onTestFinished(async () => {
    await app.close();
  });
  await app.ready();
  return app.printRoutes({ commonPrefix: false });
}

const isStatic = (route: string) => STATIC_ROUTES.some((s) => (s.endsWith('*') ? route.startsWith(s.slice(0, -1)) : route === s));

describe('the route list of the bad-input tests', () => {
  it('reads every route and method out of the printed tree', async () => {
    const routes = registeredRoutes(await printedRoutes(true));
    expect(routes).toContain('GET /livez');
    expect(routes).toContain('POST /v1/users/{}/set-password');
    expect(routes).toContain('DELETE /v1/jobs/{}/outputs/{}/{}');
    expect(routes).toContain('GET /v1/jobs/{}/outputs/{}/{}/info');
    expect(routes.some((r) => r.startsWith('HEAD '))).toBe(false);
  });

  it('is exactly the routes the server registers with its extensions on', async () => {
    const registered = registeredRoutes(await printedRoutes(true)).filter((r) => !isStatic(r));
    const listed = ROUTES.map(routeShape);
    expect(new Set(listed).size, 'a route listed twice').toBe(listed.length);
    expect({ unlisted: registered.filter((r) => !listed.includes(r)), gone: listed.filter((r) => !registered.includes(r)) }).toEqual({
      unlisted: [],
      gone: [],
    });
  });

  it('holds every route of strict reference mode', async () => {
    const registered = registeredRoutes(await printedRoutes(false)).filter((r) => !isStatic(r));
    const listed = ROUTES.map(routeShape);
    expect(registered.filter((r) => !listed.includes(r))).toEqual([]);
  });
});
