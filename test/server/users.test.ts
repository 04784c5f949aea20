import { describe, expect, it } from 'vitest';
import { ADMIN_PK, startWithFixtures } from '../helpers/fixtures.js';
import { ADMIN_USER, api } from '../helpers/server.js';

const USER_KEYS = ['username', 'pk', 'last_login', 'is_superuser', 'first_name', 'last_name', 'email', 'is_staff', 'is_active', 'date_joined'];

describe('GET /v1/users/{username}', () => {
  it('returns your own record as a one-element array in the reference shape', async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user({ name: 'alice' });
    const res = await fx.call('GET', '/v1/users/alice', { as: alice });
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(1);
    expect(Object.keys(res.body[0])).toEqual(USER_KEYS);
    expect(res.body[0]).toMatchObject({ username: 'alice', pk: alice.pk, is_staff: false, is_superuser: false, is_active: true });
  });

  it('refuses another user to a non-admin (403 whether or not it exists) and shows it to an admin', async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user({ name: 'alice' });
    await fx.user({ name: 'bob' });
    for (const name of ['bob', 'nobody']) {
      const res = await fx.call('GET', `/v1/users/${name}`, { as: alice });
      expect(res.status).toBe(403);
      expect(res.body.detail).toBe('You do not have permission to perform this action.');
    }
    const asAdmin = await fx.call('GET', '/v1/users/bob');
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body[0].username).toBe('bob');
    const unknown = await fx.call('GET', '/v1/users/nobody');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ detail: 'Not found.' });
  });

  it('answers 404 for a name with a NUL (%00) on every store, on each route that takes a name', async () => {
    const fx = await startWithFixtures();
    // PostgreSQL answered 400 "invalid byte sequence for encoding UTF8" where SQLite found no user.
    for (const [method, path, json] of [
      ['GET', '/v1/users/a%00b', undefined],
      ['POST', '/v1/users/%00/set-password', { password: 'long-enough-password' }],
      ['PUT', '/v1/users/admin%00/worker', { is_worker: true }],
    ] as const) {
      const res = await fx.call(method, path, json === undefined ? {} : { json });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(404);
      expect(res.body).toEqual({ detail: 'Not found.' });
    }
  });

  it('answers 401 without a token', async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('GET', `/v1/users/${ADMIN_USER}`, { as: null });
    expect(res.status).toBe(401);
  });
});

describe('POST /v1/users/create', () => {
  it('lets an admin create a user who can then log in (201 with the user JSON)', async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/users/create', {
      json: { username: 'carol', password: 'carol-password', email: 'carol@example.org', first_name: 'Carol' },
    });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body)).toEqual(USER_KEYS);
    expect(res.body).toMatchObject({ username: 'carol', email: 'carol@example.org', first_name: 'Carol', is_staff: false, last_login: null });
    expect(JSON.stringify(res.body)).not.toContain('password');
    const login = await api(fx.url, 'POST', '/v1/auth/obtain', { json: { username: 'carol', password: 'carol-password' } });
    expect(login.status).toBe(200);
  });

  it('creates staff users when asked', async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/users/create', { json: { username: 'root2', password: 'long-enough', is_staff: true } });
    expect(res.status).toBe(201);
    expect(res.body.is_staff).toBe(true);
  });

  it('answers 400 UFDL_ERR_USER_EXISTS for a taken name', async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', '/v1/users/create', { json: { username: ADMIN_USER, password: 'long-enough' } });
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe(`A user named '${ADMIN_USER}' already exists`);
  });

  it('answers 400 naming the field for a short password, a bad name, a bad e-mail or an unknown key', async () => {
    const fx = await startWithFixtures();
    const cases: Array<[unknown, RegExp]> = [
      [{ username: 'dave', password: 'short' }, /password: must be at least 8 characters/],
      [{ username: 'da ve', password: 'long-enough' }, /username: must be 1 to 150/],
      [{ username: 'dave', password: 'long-enough', email: 'not-mail' }, /email/],
      [{ username: 'dave', password: 'long-enough', is_admin: true }, /is_admin/],
      [{ password: 'long-enough' }, /username/],
    ];
    for (const [json, detail] of cases) {
      const res = await fx.call('POST', '/v1/users/create', { json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(res.body.detail).toMatch(detail);
    }
    expect((fx.db.prepare("SELECT COUNT(*) AS n FROM users WHERE username = 'dave'").get() as { n: number }).n).toBe(0);
  });

  it('is for admins only: 403 for a user, 401 anonymous', async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user();
    const json = { username: 'eve', password: 'long-enough' };
    expect((await fx.call('POST', '/v1/users/create', { as: alice, json })).status).toBe(403);
    expect((await fx.call('POST', '/v1/users/create', { as: null, json })).status).toBe(401);
  });
});

describe('POST /v1/users/{username}/set-password', () => {
  it('changes your own password: the new one logs in, the old one no longer does', async () => {
    const fx = await startWithFixtures();
    await fx.call('POST', '/v1/users/create', { json: { username: 'frank', password: 'old-password' } });
    const token = await fx.server.login('frank', 'old-password');
    const res = await api(fx.url, 'POST', '/v1/users/frank/set-password', { token, json: { password: 'new-password' } });
    expect(res.status).toBe(200);
    expect(res.body.username).toBe('frank');
    expect((await api(fx.url, 'POST', '/v1/auth/obtain', { json: { username: 'frank', password: 'new-password' } })).status).toBe(200);
    expect((await api(fx.url, 'POST', '/v1/auth/obtain', { json: { username: 'frank', password: 'old-password' } })).status).toBe(401);
  });

  it("lets an admin change anyone's password but not a user someone else's", async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user({ name: 'alice' });
    await fx.user({ name: 'bob' });
    expect((await fx.call('POST', '/v1/users/bob/set-password', { as: alice, json: { password: 'hijacked-pw' } })).status).toBe(403);
    expect((await fx.call('POST', '/v1/users/bob/set-password', { json: { password: 'admin-chosen' } })).status).toBe(200);
    expect((await api(fx.url, 'POST', '/v1/auth/obtain', { json: { username: 'bob', password: 'admin-chosen' } })).status).toBe(200);
  });

  it('answers 400 for a password shorter than 8 characters', async () => {
    const fx = await startWithFixtures();
    const res = await fx.call('POST', `/v1/users/${ADMIN_USER}/set-password`, { json: { password: '1234567' } });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/password: must be at least 8 characters/);
  });
});

describe('POST /v1/users/list', () => {
  it('lists active users to admins, inactive ones only with include_inactive', async () => {
    const fx = await startWithFixtures();
    const alice = await fx.user({ name: 'alice' });
    const bob = await fx.user({ name: 'bob' });
    fx.db.prepare('UPDATE users SET is_active = 0 WHERE pk = ?').run(bob.pk);
    const active = await fx.call('POST', '/v1/users/list', { json: {} });
    expect(active.status).toBe(200);
    expect(active.body.map((u: { pk: number }) => u.pk)).toEqual([ADMIN_PK, alice.pk]);
    const all = await fx.call('POST', '/v1/users/list', { json: { include_inactive: true } });
    expect(all.body.map((u: { pk: number }) => u.pk)).toEqual([ADMIN_PK, alice.pk, bob.pk]);
    const filtered = await fx.call('POST', '/v1/users/list', { json: { expressions: [{ type: 'exact', field: 'username', value: 'alice' }] } });
    expect(filtered.body).toHaveLength(1);
    expect((await fx.call('POST', '/v1/users/list', { as: alice, json: {} })).status).toBe(403);
  });
});
