/**
 * The bad-input suite (issue 2; docs/ERRORS.md): every route of the server gets each kind of bad input —
 * malformed JSON, bodies of the wrong JSON type, a body over the limit, bad / expired / garbage tokens,
 * bad `Node-Id` headers, another user's node, unknown and malformed pks, path tricks in output names —
 * and must answer a 4xx with a JSON `{"detail": …}`: never a 500, never HTML. After each kind, the
 * server must still answer `GET /livez`.
 *
 * The route list (test/helpers/routes.ts, shared with the fault storm) is written out rather than read
 * from the server, and test/server/route-list.test.ts holds it against the routes the server registers. A route that answers the router's own 404 (`Not found: <METHOD> <path>`) to a well-formed
 * request does not exist in this build (e.g. while another work package has not landed yet); such
 * routes are skipped, and the suite says which.
 */
import { describe, expect, it } from 'vitest';
import { TokenService } from '../../src/server/auth.js';
import { ADMIN_PK, startWithFixtures, type Fixtures, type TestUser } from '../helpers/fixtures.js';
import { BODYLESS_POSTS, isOneOf, RAW_BODY_ROUTES, ROUTES, type Method, type Route } from '../helpers/routes.js';
import { runSpec } from './support/template-specs.js';

const PK_PLACEHOLDERS = ['{job}', '{template}', '{node}', '{output}', '{hw}', '{licence}'] as const;
const BAD_PKS = ['999999', '0', '-1', '1e3', '99999999999999999999', 'abc', '1.5', '%20'];
const BODY_METHODS: ReadonlySet<Method> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The world every test acts on: two users with a node each, a template, a job with an output. */
interface World {
  fx: Fixtures;
  alice: TestUser;
  aliceNode: number;
  bobNode: number;
  ids: Record<string, string>;
  /** Routes that answered the router's 404 to a well-formed request: not in this build. */
  missing: string[];
}

async function world(options: { maxBodyBytes?: number } = {}): Promise<World> {
  const fx = await startWithFixtures(options);
  const alice = await fx.user({ name: 'alice' });
  const bob = await fx.user({ name: 'bob' });
  const aliceNode = fx.node(alice.pk);
  const bobNode = fx.node(bob.pk);
  const adminNode = fx.node(ADMIN_PK);
  const imported = await fx.call('POST', '/v1/job-templates/import', { json: runSpec({}, { inputs: [] }) });
  expect(imported.status).toBe(200);
  const template = imported.body.pk as number;
  const job = fx.job({ template });
  // An output made through the API when the jobs routes exist; else a row with a stored blob.
  let output: number | undefined;
  try {
    await fx.startAs(adminNode, job);
    const upload = await fx.call('POST', `/v1/jobs/${job}/outputs/log/BLOB`, {
      node: adminNode,
      body: 'hello',
      headers: { 'content-type': 'application/data', 'content-disposition': 'attachment; filename=log' },
    });
    if (upload.status === 200) output = upload.body.pk;
  } catch {
    // jobs routes not present: fall back below
  }
  if (output === undefined) {
    fx.db.prepare('INSERT OR IGNORE INTO blobs (sha256, size) VALUES (?, 5)').run('d'.repeat(64));
    output = Number(
      fx.db
        .prepare("INSERT INTO outputs (job, name, type, sha256, size, creator, creation_time) VALUES (?, 'log', 'BLOB', ?, 5, 1, ?)")
        .run(job, 'd'.repeat(64), new Date().toISOString()).lastInsertRowid,
    );
  }
  const ids = {
    ...{ '{job}': String(job), '{template}': String(template), '{node}': String(aliceNode), '{output}': String(output), '{hw}': '1', '{licence}': '2' },
    ...{ '{name}': 'log', '{type}': 'BLOB', '{user}': 'alice', '{progress}': '0.5', '{compute}': '7.5', '{contract}': 'Run', '{valuetype}': 'int' },
  };
  const w: World = { fx, alice, aliceNode, bobNode, ids, missing: [] };
  // The probe is anonymous, so it changes nothing: an existing route answers 401 (or serves a public
  // resource), only the router says `Not found: …`.
  for (const route of ROUTES) {
    const res = await send(w, route, { path: fill(route.path, ids), body: route.method === 'GET' ? undefined : '{}' });
    if (res.status === 404 && typeof res.json?.detail === 'string' && res.json.detail.startsWith('Not found: ')) {
      w.missing.push(`${route.method} ${route.path}`);
    }
  }
  return w;
}

function fill(path: string, ids: Record<string, string>): string {
  return path.replace(/\{\w+\}/g, (placeholder) => ids[placeholder] ?? placeholder);
}

function present(w: World): Route[] {
  return ROUTES.filter((r) => !w.missing.includes(`${r.method} ${r.path}`));
}

interface Sent {
  status: number;
  contentType: string | null;
  text: string;
  json: any;
}

async function send(
  w: World,
  route: Route,
  options: { path: string; token?: string | undefined; nodeId?: string; body?: string | undefined; contentType?: string },
): Promise<Sent> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.nodeId !== undefined) headers['node-id'] = options.nodeId;
  if (options.body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const res = await fetch(`${w.fx.url}${options.path}`, { method: route.method, headers, body: options.body });
  const text = await res.text();
  let json: any;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, contentType: res.headers.get('content-type'), text, json };
}

/** The invariant of the suite: a 4xx (or exactly `status`) with a JSON detail; never 5xx, never HTML. */
function expectClientError(what: string, res: Sent, status?: number | number[]): void {
  const label = `${what} → ${res.status} ${res.text.slice(0, 200)}`;
  if (status === undefined) {
    expect(res.status, label).toBeGreaterThanOrEqual(400);
    expect(res.status, label).toBeLessThan(500);
  } else if (Array.isArray(status)) {
    expect(status, label).toContain(res.status);
  } else {
    expect(res.status, label).toBe(status);
  }
  expect(res.contentType ?? '', label).toMatch(/^application\/json/);
  expect(typeof res.json?.detail, label).toBe('string');
}

async function expectStillServing(w: World): Promise<void> {
  const res = await fetch(`${w.fx.url}/livez`);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ status: 'ok' });
}

function reportMissing(w: World): void {
  if (w.missing.length > 0) console.warn(`bad-input suite: routes not in this build, skipped: ${w.missing.join(', ')}`);
}

describe('bad input on every route', () => {
  it('malformed JSON → 400 JSON on every route that takes a body', async () => {
    const w = await world();
    reportMissing(w);
    // Only the jobs work package's routes may be missing; this file's own routes must all be there.
    expect(w.missing.filter((r) => !/ \/v1\/(jobs|job-outputs)\//.test(r))).toEqual([]);
    const token = await w.fx.adminToken();
    for (const route of present(w)) {
      if (!BODY_METHODS.has(route.method)) continue;
      const path = fill(route.path, w.ids);
      const res = await send(w, route, { path, token, body: '{"expressions": [' });
      // The upload and live-log routes read raw bytes (any body is content); there it is refused by other rules.
      expectClientError(`${route.method} ${path}`, res, isOneOf(route, RAW_BODY_ROUTES) ? undefined : 400);
    }
    await expectStillServing(w);
  });

  it('bodies of the wrong JSON type (array, string, number, numbers where strings go) → 4xx JSON', async () => {
    const w = await world();
    // As a plain user without Node-Id: no route may turn these bodies into a success or a crash.
    for (const route of present(w)) {
      if (route.method === 'GET' || route.method === 'DELETE' || isOneOf(route, BODYLESS_POSTS)) continue;
      const path = fill(route.path, w.ids);
      for (const body of ['[1, 2]', '"text"', '42', '{"username": 1, "password": 2, "ip": 3, "name": 4, "token": 5, "refresh": 6, "input_values": 7, "expressions": 8, "description": {}, "filetype": 9, "params": 10, "send_notification": 11, "error": 12}']) {
        const res = await send(w, route, { path, token: w.alice.token, body });
        expectClientError(`${route.method} ${path} ${body}`, res);
      }
    }
    await expectStillServing(w);
  });

  it('a body over the limit → 413 JSON', async () => {
    const w = await world({ maxBodyBytes: 4096 });
    const token = await w.fx.adminToken();
    const big = JSON.stringify({ description: 'x'.repeat(8192) });
    for (const route of present(w)) {
      if (!BODY_METHODS.has(route.method)) continue;
      const path = fill(route.path, w.ids);
      const res = await send(w, route, { path, token, body: big });
      // Output uploads are streamed and limited by maxOutputBytes instead (tested with the outputs);
      // this admin's upload to a job it does not work is refused first.
      expectClientError(`${route.method} ${path}`, res, isOneOf(route, RAW_BODY_ROUTES) ? undefined : 413);
    }
    await expectStillServing(w);
  });

  it('bad, expired and garbage tokens → 401 JSON on every route', async () => {
    const w = await world();
    const secret = (w.fx.db.prepare("SELECT value FROM settings WHERE key = 'jwt_secret'").get() as { value: string }).value;
    const expired = await new TokenService(secret, { accessSeconds: -60, refreshSeconds: -60 }).issue(ADMIN_PK, 'access');
    const foreign = await new TokenService('not-the-secret', { accessSeconds: 300, refreshSeconds: 300 }).issue(ADMIN_PK, 'access');
    const refresh = await new TokenService(secret, { accessSeconds: 300, refreshSeconds: 300 }).issue(ADMIN_PK, 'refresh');
    for (const route of present(w)) {
      const path = fill(route.path, w.ids);
      for (const token of [expired, foreign, refresh, 'garbage', 'a.b.c', '']) {
        const res = await send(w, route, { path, token, body: route.method === 'GET' ? undefined : '{}' });
        expectClientError(`${route.method} ${path} token=${token.slice(0, 12)}`, res, 401);
      }
    }
    await expectStillServing(w);
  });

  it('Node-Id: abc and Node-Id: 999999 → 400 JSON on every route', async () => {
    const w = await world();
    const token = await w.fx.adminToken();
    for (const route of present(w)) {
      const path = fill(route.path, w.ids);
      for (const nodeId of ['abc', '999999', '-1', '1.0']) {
        const res = await send(w, route, { path, token, nodeId, body: route.method === 'GET' ? undefined : '{}' });
        expectClientError(`${route.method} ${path} Node-Id=${nodeId}`, res, 400);
        expect(res.json.detail).toMatch(new RegExp(`^Bad Node-Id header '${nodeId.replace('.', '\\.')}'`));
      }
      // Digits beyond any pk (beyond bigint, beyond the safe integers) name no node, on either store:
      // PostgreSQL answered "A value in the request does not fit its field" for the first.
      for (const nodeId of ['9223372036854775808', '9007199254740993']) {
        const res = await send(w, route, { path, token, nodeId, body: route.method === 'GET' ? undefined : '{}' });
        expectClientError(`${route.method} ${path} Node-Id=${nodeId}`, res, 400);
        expect(res.json.detail).toBe(`Bad Node-Id header '${nodeId}': No node with this primary-key`);
      }
    }
    await expectStillServing(w);
  });

  it("another user's node → 403 JSON on every route", async () => {
    const w = await world();
    for (const route of present(w)) {
      const path = fill(route.path, w.ids);
      const res = await send(w, route, { path, token: w.alice.token, nodeId: String(w.bobNode), body: route.method === 'GET' ? undefined : '{}' });
      expectClientError(`${route.method} ${path} as alice with bob's node`, res, 403);
    }
    await expectStillServing(w);
  });

  it('unknown and malformed pks → 4xx JSON on every route that takes one', async () => {
    const w = await world();
    const token = await w.fx.adminToken();
    // The admin acts as its own node, so node-only routes get as far as the lookup.
    const adminNode = String(w.fx.node(ADMIN_PK));
    for (const route of present(w)) {
      const placeholder = PK_PLACEHOLDERS.find((p) => route.path.includes(p));
      if (!placeholder) continue;
      for (const bad of BAD_PKS) {
        const path = fill(route.path, { ...w.ids, [placeholder]: bad });
        const res = await send(w, route, { path, token, nodeId: adminNode, body: route.method === 'GET' ? undefined : '{}' });
        // 404 for most; a 4xx of another kind is fine where a rule fires first (e.g. 400 for a
        // malformed header-free upload), but never a success.
        expectClientError(`${route.method} ${path}`, res);
      }
    }
    // Unknown usernames.
    for (const route of present(w).filter((r) => r.path.includes('{user}'))) {
      const body = route.method === 'GET' ? undefined : route.path.endsWith('/worker') ? '{"is_worker": true}' : '{"password": "long-enough"}';
      const res = await send(w, route, { path: fill(route.path, { ...w.ids, '{user}': 'nobody' }), token, body });
      expectClientError(`${route.method} ${route.path} nobody`, res, 404);
    }
    await expectStillServing(w);
  });

  it('filter values that fit no column (huge numbers, text for numbers, odd times) → never a 500, on either store', async () => {
    const w = await world();
    const hostile: unknown[] = [1e300, -1e300, 99999999999999999999, 'abc', '', '1e999', true, '2026-13-45T99:99:99Z'];
    for (const path of ['/v1/jobs/list', '/v1/nodes/list', '/v1/job-templates/list', '/v1/hardware/list']) {
      for (const value of hostile) {
        for (const expression of [
          { type: 'exact', field: 'pk', value },
          { type: 'compare', field: 'pk', operator: '>=', value },
          { type: 'contains', field: 'pk', sub_string: String(value) },
        ]) {
          const res = await w.fx.call('POST', path, { json: { expressions: [expression] } });
          expect(res.status, `${path} ${JSON.stringify(expression)} → ${res.status} ${res.text}`).toBeLessThan(500);
          expect(res.text.startsWith('<'), 'JSON, not HTML').toBe(false);
        }
      }
    }
    expect((await w.fx.call('GET', '/livez', { as: null })).status).toBe(200);
  });

  it('a NUL character (\\u0000) or a lone surrogate in any string or key of a JSON body → 400 naming it, on either store', async () => {
    const fx = await startWithFixtures();
    const job = fx.job();
    const node = fx.node();
    await fx.startAs(node, job);
    for (const [method, path, json, where, opts] of [
      // SQLite answered 401 here, PostgreSQL 400 "invalid byte sequence"; and a user named with a NUL
      // could be made on SQLite only.
      ['POST', '/v1/auth/obtain', { username: 'ad\u0000min', password: 'x' }, 'field "username"', { as: null }],
      ['POST', '/v1/users/create', { username: 'nul\u0000user', password: 'long-enough-password' }, 'field "username"', {}],
      ['POST', '/v1/jobs/list', { expressions: [{ type: 'contains', field: 'description', sub_string: 'a\u0000' }] }, 'field "expressions[0].sub_string"', {}],
      ['PATCH', `/v1/jobs/${job}`, { description: '\u0000' }, 'field "description"', {}],
      // Progress metadata is jsonb on PostgreSQL, which holds no NUL in a key either.
      ['POST', `/v1/jobs/${job}/progress/0.5`, { ['k\u0000']: 1 }, 'key "k\\u0000"', { node }],
    ] as const) {
      const res = await fx.call(method, path, { json, ...opts });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(400);
      expect(res.body.detail).toBe(`The JSON body's ${where} holds a NUL character (\\u0000); text may not contain NUL characters`);
    }
    // A lone surrogate is no Unicode text: SQLite stored a node's ip "\ud800" as three U+FFFD,
    // PostgreSQL as one, and jsonb refused it (400 "does not fit").
    for (const [method, path, json, where, opts] of [
      ['POST', '/v1/nodes/create', { ip: '10.0.0.\ud800', index: 0, cpu_mem: 1000 }, 'field "ip"', {}],
      ['POST', `/v1/jobs/${job}/progress/0.5`, { note: ['\udc00'] }, 'field "note[0]"', { node }],
      ['POST', '/v1/jobs/list', { expressions: [{ type: 'exact', field: 'description', value: 'a\ud800b' }] }, 'field "expressions[0].value"', {}],
    ] as const) {
      const res = await fx.call(method, path, { json, ...opts });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(400);
      expect(res.body.detail).toBe(`The JSON body's ${where} holds a lone UTF-16 surrogate (such as \\ud800); text must be valid Unicode`);
    }
    // Escapes as any client may write them (upper case, or a surrogate pair written as two escapes).
    const upper = await fx.call('PATCH', `/v1/jobs/${job}`, { body: '{"description":"x\\uDBFF"}', headers: { 'content-type': 'application/json' } });
    expect(upper.status, upper.text).toBe(400);
    expect(upper.body.detail).toBe('The JSON body\'s field "description" holds a lone UTF-16 surrogate (such as \\ud800); text must be valid Unicode');
    const escapedPair = await fx.call('PATCH', `/v1/jobs/${job}`, { body: '{"description":"ok \\uD83D\\uDE00"}', headers: { 'content-type': 'application/json' } });
    expect(escapedPair.status, escapedPair.text).toBe(200);
    expect(escapedPair.body.description).toBe('ok 😀');
    // Paired surrogates are ordinary text.
    const emoji = await fx.call('PATCH', `/v1/jobs/${job}`, { json: { description: 'ok 😀' } });
    expect(emoji.status, emoji.text).toBe(200);
    expect(emoji.body.description).toBe('ok 😀');
    expect((await fx.call('POST', '/v1/users/list', { json: { expressions: [{ type: 'contains', field: 'username', sub_string: 'nul' }] } })).body).toEqual([]);
    expect((await fx.call('GET', `/v1/jobs/${job}`)).body.description).not.toContain('\u0000');
  });

  it('path tricks in output names and types → 4xx JSON, nothing written outside the data directory', async () => {
    const w = await world();
    const token = await w.fx.adminToken();
    const routes = present(w).filter((r) => r.path.includes('{name}'));
    for (const route of routes) {
      for (const [name, type] of [
        ['..', 'BLOB'],
        ['%2e%2e', 'BLOB'],
        ['a%2Fb', 'BLOB'],
        ['a%00b', 'BLOB'],
        ['log', '..'],
        ['log', '%2e%2e%2f%2e%2e%2fetc'],
      ]) {
        const path = fill(route.path, { ...w.ids, '{name}': name!, '{type}': type! });
        const res = await send(w, route, {
          path,
          token,
          body: route.method === 'POST' ? 'data' : undefined,
          contentType: 'application/data',
        });
        expectClientError(`${route.method} ${path}`, res);
      }
    }
    await expectStillServing(w);
  });
});
