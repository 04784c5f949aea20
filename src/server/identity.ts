/**
 * Who is calling: the JWT user and the `Node-Id` node, and the permission
 * checks routes call. Deviations from the reference (docs/COMPATIBILITY.md, bug B13): a `Node-Id` only counts with
 * a valid token of the user who registered that node (or an admin), and only then is `last_seen`
 * updated.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { forbidden } from '../protocol/error-constructors.js';
import { UfdlError } from '../protocol/errors.js';
import type { TokenClaims, TokenService } from './auth.js';
import type { CallerNode, CallerUser } from './context.js';
import { heartbeatClockMs, PG_NOW_MS_SQL } from './store/database-clock.js';
import { cachedStatement, type Db } from './store/db.js';
import { dialectOf } from './store/postgres/database.js';
import { cachedRows, objectBuilder } from './store/row-reader.js';

/** How stale a node's stored `last_seen` may be. */
export const HEARTBEAT_RESOLUTION_MS = 1000;

/** At most this many verified access tokens are remembered (per token service). */
const VERIFIED_TOKENS_MAX = 1024;
const verifiedTokens = new WeakMap<TokenService, Map<string, TokenClaims>>();

/**
 * The claims of an access token, verified once and then remembered until it expires. A node sends
 * the same token with every request for minutes; verifying its signature each time (jose, through
 * WebCrypto) cost more than the rest of a progress request. Tokens are stateless (no revocation), so
 * a remembered token's signature is exactly as valid as a re-verified one while `exp` is in the future;
 * whether it was revoked is checked against its user's token generation at every request.
 */
function verifiedAccessClaims(tokens: TokenService, token: string): TokenClaims | Promise<TokenClaims> {
  let cache = verifiedTokens.get(tokens);
  if (!cache) {
    cache = new Map();
    verifiedTokens.set(tokens, cache);
  }
  const known = cache.get(token);
  if (known && known.exp * 1000 > Date.now()) return known;
  cache.delete(token);
  return tokens.verify(token, 'access').then((claims) => {
    // Oldest first (a Map keeps insertion order).
    if (cache.size >= VERIFIED_TOKENS_MAX) cache.delete(cache.keys().next().value!);
    cache.set(token, claims);
    return claims;
  });
}

export function registerIdentityHook(app: FastifyInstance): void {
  app.decorateRequest('user', null);
  app.decorateRequest('node', null);
  app.decorateRequest('metricsScraper', false);

  // Callback style, and synchronous once the token is known (all but a node's first request in
  // each token's lifetime): an async hook costs a promise and a microtask on every request.
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.routeOptions.config.metricsSecret && carriesMetricsSecret(app, request)) {
      request.metricsScraper = true;
      done();
      return;
    }
    let claims: TokenClaims | Promise<TokenClaims> | null;
    try {
      claims = tokenClaims(app, request);
    } catch (err) {
      done(err as Error);
      return;
    }
    if (claims instanceof Promise) {
      claims.then((verified) => identify(app, request, verified)).then(() => done(), done);
      return;
    }
    try {
      identify(app, request, claims);
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  });
}

/** Set `request.user` and `request.node` from the verified claims (null: no token). */
function identify(app: FastifyInstance, request: FastifyRequest, claims: TokenClaims | null): void {
  const nodePk = nodePkOf(request);
  const rows = claims === null ? null : callerRows(app.ufdl.db, claims.upk, namesANode(nodePk) ? nodePk : undefined);
  request.user = claims === null ? null : checkedTokenUser(claims, rows!.user);
  request.node = nodeFromRequest(app, request, nodePk, rows);
}

/** Whether the request's bearer token is the configured metrics secret (compared in constant time). */
function carriesMetricsSecret(app: FastifyInstance, request: FastifyRequest): boolean {
  const secret = app.ufdl.options.metricsToken;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
  if (secret === undefined || bearer === undefined) return false;
  const a = createHash('sha256').update(bearer).digest();
  const b = createHash('sha256').update(secret).digest();
  return timingSafeEqual(a, b);
}

/** The verified claims of the request's bearer token; null without an `Authorization` header. */
function tokenClaims(app: FastifyInstance, request: FastifyRequest): TokenClaims | Promise<TokenClaims> | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) {
    throw new UfdlError('UFDL_ERR_AUTH_BAD_TOKEN', "Authorization header must be 'Bearer <access token>'", {
      extra: { code: 'token_not_valid' },
    });
  }
  return verifiedAccessClaims(app.ufdl.tokens, match[1]!);
}

/**
 * The columns a request reads of its caller: what permissions, revocation and the heartbeat check
 * (`CallerUser`, `CallerNode`), not the whole rows. Every column read is a value the driver converts
 * and a property set, on 13 of a job's 15 requests; the password hash, names and hardware columns
 * were half of them, and no request needs them from here (a route that shows a user reads its row).
 */
const CALLER_USER_COLUMNS = ['pk', 'username', 'is_staff', 'is_superuser', 'is_active', 'token_generation', 'is_worker'] as const satisfies readonly (keyof CallerUser)[];
const CALLER_NODE_COLUMNS = ['pk', 'owner', 'last_seen'] as const satisfies readonly (keyof CallerNode)[];
const USER_SQL = `SELECT ${CALLER_USER_COLUMNS.join(', ')} FROM users WHERE pk = ?`;
const NODE_SQL = `SELECT ${CALLER_NODE_COLUMNS.join(', ')} FROM nodes WHERE pk = ?`;
/**
 * The caller's user and node in one statement: each statement outside a transaction takes and
 * releases the database's read locks, and a node's requests name both. The node's columns are
 * renamed so the two rows can be told apart.
 */
const USER_AND_NODE_SQL = `SELECT ${CALLER_USER_COLUMNS.map((c) => `u.${c}`).join(', ')}, ${CALLER_NODE_COLUMNS.map((c) => `n.${c} AS node_${c}`).join(', ')}
  FROM users u LEFT JOIN nodes n ON n.pk = ? WHERE u.pk = ?`;
/**
 * On PostgreSQL the same row also carries the database's clock, which `last_seen` is kept by there
 * (store/database-clock.ts): the heartbeat costs no statement more than on SQLite, whose own is unchanged.
 */
const PG_USER_AND_NODE_SQL = USER_AND_NODE_SQL.replace(' FROM users u', `, ${PG_NOW_MS_SQL} AS now_ms FROM users u`);

interface CallerRows {
  user: CallerUser | undefined;
  node: CallerNode | undefined;
  /** The database's clock when the rows were read (PostgreSQL only): the heartbeat's time. */
  nowMs?: number;
}

/** User `userPk` and node `nodePk` as a request knows them (undefined: no such row; no node looked up without `nodePk`). */
export function callerRows(db: Db, userPk: number, nodePk: number | undefined): CallerRows {
  if (nodePk === undefined) return { user: cachedRows<CallerUser>(db, USER_SQL).get(userPk), node: undefined };
  const postgres = dialectOf(db) === 'postgres';
  const row = cachedRows<Record<string, unknown>>(db, postgres ? PG_USER_AND_NODE_SQL : USER_AND_NODE_SQL).get(nodePk, userPk);
  if (row === undefined) return { user: undefined, node: nodeByPk(db, nodePk) };
  const rows: CallerRows = { user: userOf(row), node: row.node_pk === null ? undefined : nodeOf(row) };
  if (postgres) rows.nowMs = row.now_ms as number;
  return rows;
}

/** The user's and the node's columns copied out of the joined row (one shape each: row-reader.ts). */
const userOf = objectBuilder<CallerUser>(CALLER_USER_COLUMNS.map((c) => [c, c]));
const nodeOf = objectBuilder<CallerNode>(CALLER_NODE_COLUMNS.map((c) => [c, `node_${c}`]));

function nodeByPk(db: Db, pk: number): CallerNode | undefined {
  return cachedRows<CallerNode>(db, NODE_SQL).get(pk);
}

/**
 * The user a verified token speaks for: active, and the token of the user's current generation —
 * a password change increments the generation, which revokes every token issued before it.
 * @throws UfdlError 401 `UFDL_ERR_AUTH_BAD_TOKEN` otherwise
 */
export function tokenUser(db: Db, claims: TokenClaims): CallerUser {
  return checkedTokenUser(claims, callerRows(db, claims.upk, undefined).user);
}

/**
 * Whether `user`, as its token authenticated it when a long-lived connection (a web-socket) opened,
 * may still be served: not deleted, still active, and no password change since has revoked its
 * tokens. A socket is authenticated once, at its handshake; this is asked again on each keep-alive.
 */
export function stillAuthenticated(db: Db, user: CallerUser): boolean {
  const now = callerRows(db, user.pk, undefined).user;
  return now !== undefined && Boolean(now.is_active) && now.token_generation === user.token_generation;
}

function checkedTokenUser(claims: TokenClaims, user: CallerUser | undefined): CallerUser {
  if (!user || !user.is_active) {
    throw new UfdlError('UFDL_ERR_AUTH_BAD_TOKEN', 'User not found or inactive', { extra: { code: 'user_not_found' } });
  }
  if ((claims.gen ?? 0) !== user.token_generation) {
    throw new UfdlError('UFDL_ERR_AUTH_BAD_TOKEN', 'Token was revoked: the password changed since it was issued; log in again', {
      extra: { code: 'token_not_valid' },
    });
  }
  return user;
}

/** The `Node-Id` header: absent, a primary key, or the malformed text (refused once the token is checked). */
function nodePkOf(request: FastifyRequest): number | string | undefined {
  const raw = request.headers['node-id'];
  if (raw === undefined) return undefined;
  const value = Array.isArray(raw) ? raw.join(',') : raw;
  return /^\s*\d+\s*$/.test(value) ? Number(value) : value;
}

/**
 * Whether the Node-Id's digits can name a node: not beyond the safe integers, which no pk reaches and
 * which a JavaScript number does not hold exactly (parsePk's rule for pks in URLs). Asked for one,
 * PostgreSQL refused the number as no `bigint` (400 "does not fit") where SQLite found no node.
 */
function namesANode(nodePk: number | string | undefined): nodePk is number {
  return typeof nodePk === 'number' && Number.isSafeInteger(nodePk);
}

function nodeFromRequest(
  app: FastifyInstance,
  request: FastifyRequest,
  nodePk: number | string | undefined,
  rows: CallerRows | null,
): CallerNode | null {
  if (nodePk === undefined) return null;
  if (typeof nodePk === 'string') {
    throw new UfdlError('UFDL_ERR_AUTH_BAD_NODE_ID', `Bad Node-Id header '${nodePk}': Unable to parse into an integer primary-key`);
  }
  const { db } = app.ufdl;
  const node = !namesANode(nodePk) ? undefined : rows === null ? nodeByPk(db, nodePk) : rows.node;
  if (!node) throw new UfdlError('UFDL_ERR_AUTH_BAD_NODE_ID', `Bad Node-Id header '${String(request.headers['node-id'])}': No node with this primary-key`);
  const user = request.user;
  // Without a token the node is known but not trusted: node actions then answer 401 (requireNode).
  if (!user) return null;
  requireWorker(app, user);
  if (!user.is_staff && node.owner !== user.pk) {
    throw new UfdlError('UFDL_ERR_AUTH_NOT_YOUR_NODE', `Node ${node.pk} was registered by another user; you may not act as it`);
  }
  // Every authorised request with a Node-Id is a heartbeat (lost-node recovery, docs/ARCHITECTURE.md, Self-fencing). A busy
  // node sends many requests a second, so the stored time is refreshed at most once per
  // HEARTBEAT_RESOLUTION_MS, far finer than `lost_after` needs. Like every write it is made durable
  // by the shared sync before the answer leaves (durable-replies.ts). The time is the one the lost-node
  // sweep compares with, whichever replica sweeps: the database's clock on PostgreSQL, read with the
  // caller's rows (store/database-clock.ts).
  const now = rows?.nowMs ?? heartbeatClockMs(db);
  if (node.last_seen === null || now - Date.parse(node.last_seen) >= HEARTBEAT_RESOLUTION_MS) {
    const iso = new Date(now).toISOString();
    cachedStatement(db, 'UPDATE nodes SET last_seen = ? WHERE pk = ?').run(iso, node.pk);
    node.last_seen = iso;
  }
  return node;
}

/** The route needs a user: 401 without one (with the reference's WWW-Authenticate header). */
export function requireUser(request: FastifyRequest): CallerUser {
  if (!request.user) throw new UfdlError('UFDL_ERR_AUTH_MISSING', 'Authentication credentials were not provided.');
  return request.user;
}

export function requireAdmin(request: FastifyRequest): CallerUser {
  const user = requireUser(request);
  if (!user.is_staff) throw forbidden();
  return user;
}

/** The route acts as a node: a user token and a `Node-Id` this user may use. */
export function requireNode(request: FastifyRequest): CallerNode {
  requireUser(request);
  if (!request.node) throw forbidden('This action needs a Node-Id header naming your node.');
  return request.node;
}

/**
 * With `nodeActions: 'workers'`, registering a node or acting as one needs a worker account (or an
 * admin's); otherwise any user may, as on the reference.
 */
export function requireWorker(app: FastifyInstance, user: CallerUser): void {
  if (app.ufdl.options.nodeActions === 'workers' && !user.is_staff && !user.is_worker) {
    throw new UfdlError(
      'UFDL_ERR_AUTH_NOT_WORKER',
      `User '${user.username}' is not a worker account; on this server only worker accounts and admins may register or act as nodes`,
    );
  }
}

export function isAdmin(request: FastifyRequest): boolean {
  return Boolean(request.user?.is_staff);
}
