import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { TokenService } from '../../src/server/auth.js';
import { callerRows } from '../../src/server/identity.js';
import { dialectOf } from '../../src/server/store/postgres/database.js';
import { ADMIN_PK, startWithFixtures } from '../helpers/fixtures.js';
import { ADMIN_PASSWORD, ADMIN_USER, api } from '../helpers/server.js';

const NO_ACCOUNT = { detail: 'No active account found with the given credentials' };
const TOKEN_INVALID = { detail: 'Token is invalid or expired', code: 'token_not_valid' };

async function obtain(url: string, body: unknown) {
  return api(url, 'POST', '/v1/auth/obtain', { json: body });
}

describe('POST /v1/auth/obtain', () => {
  it('returns a refresh and an access token with the reference claims and lifetimes', async () => {
    const fx = await startWithFixtures();
    const res = await obtain(fx.url, { username: ADMIN_USER, password: ADMIN_PASSWORD });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['access', 'refresh']);
    const access = decodeJwt(res.body.access);
    const refresh = decodeJwt(res.body.refresh);
    expect(access).toMatchObject({ jtt: 'access', upk: ADMIN_PK });
    expect(refresh).toMatchObject({ jtt: 'refresh', upk: ADMIN_PK });
    expect(access.exp! - access.iat!).toBe(300);
    expect(refresh.exp! - refresh.iat!).toBe(8 * 3600);
    expect(typeof access.jti).toBe('string');
  });

  it('records last_login', async () => {
    const fx = await startWithFixtures();
    fx.db.prepare('UPDATE users SET last_login = NULL WHERE pk = ?').run(ADMIN_PK);
    await obtain(fx.url, { username: ADMIN_USER, password: ADMIN_PASSWORD });
    const { last_login } = fx.db.prepare('SELECT last_login FROM users WHERE pk = ?').get(ADMIN_PK) as { last_login: string | null };
    expect(last_login).not.toBeNull();
    expect(Date.now() - Date.parse(last_login!)).toBeLessThan(60_000);
  });

  it('answers 401 with the simplejwt body for a wrong password or an unknown user', async () => {
    const fx = await startWithFixtures();
    for (const body of [
      { username: ADMIN_USER, password: 'wrong-password' },
      { username: 'nobody', password: ADMIN_PASSWORD },
    ]) {
      const res = await obtain(fx.url, body);
      expect(res.status).toBe(401);
      expect(res.body).toEqual(NO_ACCOUNT);
    }
  });

  it('refuses an inactive user with the same 401', async () => {
    const fx = await startWithFixtures();
    fx.db.prepare('UPDATE users SET is_active = 0 WHERE pk = ?').run(ADMIN_PK);
    const res = await obtain(fx.url, { username: ADMIN_USER, password: ADMIN_PASSWORD });
    expect(res.status).toBe(401);
    expect(res.body).toEqual(NO_ACCOUNT);
  });

  it('answers 400 with a field error for every missing field', async () => {
    const fx = await startWithFixtures();
    const res = await obtain(fx.url, {});
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ username: ['This field is required.'], password: ['This field is required.'] });
    expect(res.body.detail).toMatch(/username.*required.*password.*required/);

    const one = await obtain(fx.url, { username: ADMIN_USER });
    expect(one.status).toBe(400);
    expect(one.body.password).toEqual(['This field is required.']);
    expect(one.body).not.toHaveProperty('username');
  });

  it('answers 400 for fields of the wrong type, blank fields and a non-object body', async () => {
    const fx = await startWithFixtures();
    const typed = await obtain(fx.url, { username: 5, password: '' });
    expect(typed.status).toBe(400);
    expect(typed.body).toMatchObject({ username: ['Not a valid string.'], password: ['This field may not be blank.'] });

    const list = await obtain(fx.url, [ADMIN_USER, ADMIN_PASSWORD]);
    expect(list.status).toBe(400);
    expect(list.body.non_field_errors[0]).toMatch(/Expected a dictionary, but got list/);
  });

  it('answers 400 JSON for a malformed JSON body', async () => {
    const fx = await startWithFixtures();
    const res = await api(fx.url, 'POST', '/v1/auth/obtain', { body: '{"username": ', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(typeof res.body.detail).toBe('string');
  });
});

describe('POST /v1/auth/refresh', () => {
  it('issues a working access token and no new refresh token', async () => {
    const fx = await startWithFixtures();
    const pair = (await obtain(fx.url, { username: ADMIN_USER, password: ADMIN_PASSWORD })).body;
    const res = await api(fx.url, 'POST', '/v1/auth/refresh', { json: { refresh: pair.refresh } });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['access']);
    const me = await api(fx.url, 'GET', `/v1/users/${ADMIN_USER}`, { token: res.body.access });
    expect(me.status).toBe(200);
  });

  it('refuses an access token, a garbage token and an expired one with token_not_valid', async () => {
    const fx = await startWithFixtures();
    const pair = (await obtain(fx.url, { username: ADMIN_USER, password: ADMIN_PASSWORD })).body;
    const secret = (fx.db.prepare("SELECT value FROM settings WHERE key = 'jwt_secret'").get() as { value: string }).value;
    const expired = await new TokenService(secret, { accessSeconds: -10, refreshSeconds: -10 }).issue(ADMIN_PK, 'refresh');
    for (const refresh of [pair.access, 'not.a.token', expired]) {
      const res = await api(fx.url, 'POST', '/v1/auth/refresh', { json: { refresh } });
      expect(res.status).toBe(401);
      expect(res.body).toEqual(TOKEN_INVALID);
    }
  });

  it('refuses the refresh token of a user deactivated since', async () => {
    const fx = await startWithFixtures();
    const pair = (await obtain(fx.url, { username: ADMIN_USER, password: ADMIN_PASSWORD })).body;
    fx.db.prepare('UPDATE users SET is_active = 0 WHERE pk = ?').run(ADMIN_PK);
    const res = await api(fx.url, 'POST', '/v1/auth/refresh', { json: { refresh: pair.refresh } });
    expect(res.status).toBe(401);
    expect(res.body).toEqual(TOKEN_INVALID);
  });

  it('answers 400 when the refresh field is missing', async () => {
    const fx = await startWithFixtures();
    const res = await api(fx.url, 'POST', '/v1/auth/refresh', { json: {} });
    expect(res.status).toBe(400);
    expect(res.body.refresh).toEqual(['This field is required.']);
  });
});

describe('POST /v1/auth/verify', () => {
  it('answers 200 {} for a valid access or refresh token', async () => {
    const fx = await startWithFixtures();
    const pair = (await obtain(fx.url, { username: ADMIN_USER, password: ADMIN_PASSWORD })).body;
    for (const token of [pair.access, pair.refresh]) {
      const res = await api(fx.url, 'POST', '/v1/auth/verify', { json: { token } });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
    }
  });

  it('answers 401 token_not_valid for a bad signature or an expired token', async () => {
    const fx = await startWithFixtures();
    const secret = (fx.db.prepare("SELECT value FROM settings WHERE key = 'jwt_secret'").get() as { value: string }).value;
    const expired = await new TokenService(secret, { accessSeconds: -10, refreshSeconds: -10 }).issue(ADMIN_PK, 'access');
    const foreign = await new TokenService('another-secret', { accessSeconds: 300, refreshSeconds: 300 }).issue(ADMIN_PK, 'access');
    for (const token of [expired, foreign]) {
      const res = await api(fx.url, 'POST', '/v1/auth/verify', { json: { token } });
      expect(res.status).toBe(401);
      expect(res.body).toEqual(TOKEN_INVALID);
    }
  });
});

describe('access tokens on API routes', () => {
  it('answers 401 with WWW-Authenticate when no credentials are sent', async () => {
    const fx = await startWithFixtures();
    const res = await api(fx.url, 'POST', '/v1/nodes/list', { json: {} });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ detail: 'Authentication credentials were not provided.' });
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="api"');
  });

  it('answers 401 with the simplejwt messages for an expired access token', async () => {
    const fx = await startWithFixtures();
    const secret = (fx.db.prepare("SELECT value FROM settings WHERE key = 'jwt_secret'").get() as { value: string }).value;
    const expired = await new TokenService(secret, { accessSeconds: -10, refreshSeconds: -10 }).issue(ADMIN_PK, 'access');
    const res = await api(fx.url, 'POST', '/v1/nodes/list', { token: expired, json: {} });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ detail: 'Given token not valid for any token type', code: 'token_not_valid' });
    expect(res.body.messages[0]).toMatchObject({ token_class: 'AccessToken', token_type: 'access' });
  });

  it("reads the caller's user and node as the tables hold them, every request, and only what a request needs of them", async () => {
    const fx = await startWithFixtures();
    const node = fx.node();
    const user = fx.db.prepare('SELECT pk, username, is_staff, is_superuser, is_active, token_generation, is_worker FROM users WHERE pk = ?').get(ADMIN_PK);
    const nodeRow = fx.db.prepare('SELECT pk, owner, last_seen FROM nodes WHERE pk = ?').get(node);
    // One statement reads both, the node's columns renamed: each must come back under its own name.
    // (On PostgreSQL the node's statement also reads the database's clock, `nowMs`: see below.)
    const rowsOf = (userPk: number, nodePk: number | undefined) => {
      const { user: u, node: n } = callerRows(fx.db, userPk, nodePk);
      return { user: u, node: n };
    };
    expect(rowsOf(ADMIN_PK, node)).toEqual({ user, node: nodeRow });
    expect(rowsOf(ADMIN_PK, undefined)).toEqual({ user, node: undefined });
    expect(rowsOf(ADMIN_PK, node + 1000)).toEqual({ user, node: undefined });
    expect(rowsOf(999, node)).toEqual({ user: undefined, node: nodeRow });
    // The heartbeat's clock: the database's on PostgreSQL (one for every replica), none on SQLite.
    const { nowMs } = callerRows(fx.db, ADMIN_PK, node);
    if (dialectOf(fx.db) === 'postgres') expect(Math.abs(nowMs! - Date.now())).toBeLessThan(60_000);
    else expect(nowMs).toBeUndefined();
    // Not the password hash: nothing a request does needs it from here.
    expect(callerRows(fx.db, ADMIN_PK, node).user).not.toHaveProperty('password_hash');

    // Nothing is remembered between requests: a user deactivated is refused at the next one.
    expect((await fx.call('GET', '/v1/nodes/ping', { node })).status).toBe(200);
    fx.db.prepare('UPDATE users SET is_active = 0 WHERE pk = ?').run(ADMIN_PK);
    const refused = await fx.call('GET', '/v1/nodes/ping', { node });
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ code: 'user_not_found' });
  });
});
