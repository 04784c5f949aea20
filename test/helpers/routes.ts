/**
 * Every route of the embedded server, with placeholders, for the tests that send each route bad
 * input: the bad-input suite (test/server/bad-input.test.ts) and the fault campaign's storm
 * (test/faults/bad-input-storm.fault.ts). test/server/route-list.test.ts holds it against the routes
 * the server registers, so a route added to the server without being added here fails a test.
 *
 * Placeholders: {job} {template} {node} {output} {hw} {licence} (pks), {name} {type} (an output's),
 * {user}, {progress}, {compute}, {contract}, {valuetype}.
 */

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface Route {
  method: Method;
  path: string;
}

export const ROUTES: readonly Route[] = [
  // ops
  { method: 'GET', path: '/livez' },
  { method: 'GET', path: '/readyz' },
  { method: 'GET', path: '/metrics' },
  { method: 'GET', path: '/v1/ufdl-agent/capabilities' },
  // auth and users
  { method: 'POST', path: '/v1/auth/obtain' },
  { method: 'POST', path: '/v1/auth/refresh' },
  { method: 'POST', path: '/v1/auth/verify' },
  { method: 'GET', path: '/v1/users/{user}' },
  { method: 'POST', path: '/v1/users/create' },
  { method: 'POST', path: '/v1/users/list' },
  { method: 'POST', path: '/v1/users/{user}/set-password' },
  { method: 'PUT', path: '/v1/users/{user}/worker' },
  // nodes and hardware
  { method: 'POST', path: '/v1/nodes/list' },
  { method: 'POST', path: '/v1/nodes/create' },
  { method: 'GET', path: '/v1/nodes/ping' },
  { method: 'GET', path: '/v1/nodes/{node}' },
  { method: 'PUT', path: '/v1/nodes/{node}' },
  { method: 'PATCH', path: '/v1/nodes/{node}' },
  { method: 'DELETE', path: '/v1/nodes/{node}' },
  { method: 'POST', path: '/v1/hardware/list' },
  { method: 'GET', path: '/v1/hardware/{hw}' },
  { method: 'GET', path: '/v1/hardware/get-hardware-generation/{compute}' },
  // registries
  { method: 'POST', path: '/v1/job-types/list' },
  { method: 'GET', path: '/v1/job-types/get-all-values/{valuetype}' },
  { method: 'POST', path: '/v1/job-contracts/list' },
  { method: 'POST', path: '/v1/cuda/list' },
  { method: 'POST', path: '/v1/docker/list' },
  { method: 'POST', path: '/v1/frameworks/list' },
  { method: 'POST', path: '/v1/domains/list' },
  { method: 'POST', path: '/v1/licences/list' },
  { method: 'GET', path: '/v1/licences/{licence}' },
  // job templates
  { method: 'POST', path: '/v1/job-templates/list' },
  { method: 'POST', path: '/v1/job-templates/create' },
  { method: 'POST', path: '/v1/job-templates/import' },
  { method: 'GET', path: '/v1/job-templates/get-all-matching-templates/{contract}' },
  { method: 'GET', path: '/v1/job-templates/{template}' },
  { method: 'PUT', path: '/v1/job-templates/{template}' },
  { method: 'PATCH', path: '/v1/job-templates/{template}' },
  { method: 'DELETE', path: '/v1/job-templates/{template}' },
  { method: 'DELETE', path: '/v1/job-templates/{template}/hard' },
  { method: 'DELETE', path: '/v1/job-templates/{template}/reinstate' },
  { method: 'GET', path: '/v1/job-templates/{template}/export' },
  { method: 'POST', path: '/v1/job-templates/{template}/create-job' },
  { method: 'GET', path: '/v1/job-templates/{template}/get-all-parameters' },
  { method: 'GET', path: '/v1/job-templates/{template}/get-types' },
  { method: 'GET', path: '/v1/job-templates/{template}/get-outputs' },
  { method: 'GET', path: '/v1/job-templates/{template}/get-inputs' },
  // jobs
  { method: 'POST', path: '/v1/jobs/list' },
  { method: 'POST', path: '/v1/jobs/create' },
  { method: 'GET', path: '/v1/jobs/{job}' },
  { method: 'PUT', path: '/v1/jobs/{job}' },
  { method: 'PATCH', path: '/v1/jobs/{job}' },
  { method: 'DELETE', path: '/v1/jobs/{job}' },
  { method: 'DELETE', path: '/v1/jobs/{job}/hard' },
  { method: 'DELETE', path: '/v1/jobs/{job}/reinstate' },
  { method: 'GET', path: '/v1/jobs/{job}/acquire' },
  { method: 'DELETE', path: '/v1/jobs/{job}/release' },
  { method: 'POST', path: '/v1/jobs/{job}/start' },
  { method: 'POST', path: '/v1/jobs/{job}/progress/{progress}' },
  { method: 'POST', path: '/v1/jobs/{job}/finish' },
  { method: 'DELETE', path: '/v1/jobs/{job}/reset' },
  { method: 'DELETE', path: '/v1/jobs/{job}/abort' },
  { method: 'DELETE', path: '/v1/jobs/{job}/cancel' },
  { method: 'GET', path: '/v1/jobs/{job}/workflow' },
  { method: 'GET', path: '/v1/jobs/{job}/progress-history' },
  { method: 'POST', path: '/v1/jobs/{job}/log' },
  { method: 'GET', path: '/v1/jobs/{job}/log' },
  // job outputs
  { method: 'POST', path: '/v1/jobs/{job}/outputs/{name}/{type}' },
  { method: 'GET', path: '/v1/jobs/{job}/outputs/{name}/{type}' },
  { method: 'DELETE', path: '/v1/jobs/{job}/outputs/{name}/{type}' },
  { method: 'GET', path: '/v1/jobs/{job}/outputs/{name}/{type}/info' },
  { method: 'POST', path: '/v1/job-outputs/list' },
  { method: 'POST', path: '/v1/job-outputs/create' },
  { method: 'GET', path: '/v1/job-outputs/{output}' },
  { method: 'PUT', path: '/v1/job-outputs/{output}' },
  { method: 'PATCH', path: '/v1/job-outputs/{output}' },
  { method: 'DELETE', path: '/v1/job-outputs/{output}' },
  { method: 'DELETE', path: '/v1/job-outputs/{output}/hard' },
  { method: 'DELETE', path: '/v1/job-outputs/{output}/reinstate' },
  { method: 'POST', path: '/v1/job-outputs/{output}/download' },
  // the dashboard's routes and the agent's waiting reasons
  { method: 'POST', path: '/v1/ufdl-agent/jobs/table' },
  { method: 'GET', path: '/v1/ufdl-agent/jobs/{job}' },
  { method: 'PUT', path: '/v1/ufdl-agent/jobs/{job}/waiting' },
  { method: 'POST', path: '/v1/ufdl-agent/outputs/{output}/ticket' },
  { method: 'GET', path: '/v1/ufdl-agent/outputs/{output}/download' },
  { method: 'GET', path: '/v1/ufdl-agent/events' },
];

/** Routes whose body is raw bytes, not JSON (an output's content, a live log's), as `METHOD /path`. */
export const RAW_BODY_ROUTES: readonly string[] = ['POST /v1/jobs/{job}/outputs/{name}/{type}', 'POST /v1/jobs/{job}/log'];

/** POST routes that read no body at all (any body is ignored), as `METHOD /path`. */
export const BODYLESS_POSTS: readonly string[] = ['POST /v1/ufdl-agent/outputs/{output}/ticket'];

/** Whether `route` is one of `list` (`METHOD /path` entries). */
export const isOneOf = (route: Route, list: readonly string[]): boolean => list.includes(`${route.method} ${route.path}`);

/** Routes the server registers that take no API input at all: the dashboard's static files and its redirect. */
export const STATIC_ROUTES: readonly string[] = ['GET /', 'GET /ui', 'GET /ui/*'];

/**
 * `METHOD /path` of every route a fastify app registers (HEAD, which fastify adds beside each GET,
 * left out), with each parameter as `{}`: read from `app.printRoutes()`, the one listing fastify
 * offers once the routes are registered.
 */
export function registeredRoutes(printed: string): string[] {
  const routes: string[] = [];
  const stack: { depth: number; path: string }[] = [];
  for (const line of printed.split('\n')) {
    const match = /^((?:[│ ] {3})*)(?:[├└]── )?(\S+) \(([^)]*)\)$/.exec(line.trimEnd());
    if (!match) continue;
    const depth = match[1]!.length / 4;
    while (stack.length > 0 && stack[stack.length - 1]!.depth >= depth) stack.pop();
    const parent = stack[stack.length - 1]?.path ?? '';
    const path = parent === '/' ? `/${match[2]!}` : parent + match[2]!;
    stack.push({ depth, path });
    for (const method of match[3]!.split(', ')) {
      if (method !== 'HEAD') routes.push(`${method} ${path.replace(/:\w+(\([^)]*\))?/g, '{}')}`);
    }
  }
  return routes;
}

/** `METHOD /path` of a listed route, each placeholder as `{}` (as {@link registeredRoutes} writes them). */
export function routeShape(route: Route): string {
  return `${route.method} ${route.path.replace(/\{\w+\}/g, '{}')}`;
}
