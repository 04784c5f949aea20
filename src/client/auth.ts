/**
 * JWT tokens (`/v1/auth/…`, as the reference issues them): obtain with username and password, refresh AHEAD of expiry, and on
 * a 401 refresh, else log in again (the reference clients' rule), then the caller
 * retries once. Login refused → a ClientError of kind `auth`, which the agent turns into "not ready".
 *
 * Expiry is read from the token's `exp` and `iat` without verifying the signature (the client has no
 * key and needs none) and measured on the local clock from the moment the token arrived, so a server
 * clock that is off does not matter. Tokens and the password are never logged.
 *
 * With a {@link TokenCache} (the CLI's, `cli/token-cache.ts`) the tokens outlive the process: the
 * first call of the next one uses them, refreshes them or logs in again by the same rules, so a
 * command that follows another within the refresh token's life skips the login (a deliberately slow
 * password hash on the server).
 */
import { abortable } from './abortable.js';
import { ClientError, errorFromResponse } from './errors.js';
import type { Http, RawResponse, RequestSpec } from './http.js';
import type { ResolvedClientOptions, TokenCache } from './options.js';
import { withRetries } from './retry.js';

export interface TokenPair {
  access: string;
  refresh: string;
}

interface HeldToken {
  token: string;
  /** Local clock (ms) at which it arrived. */
  obtainedAt: number;
  /** Local clock (ms) at which the server will reject it; undefined when `exp` is unreadable. */
  expiresAt: number | undefined;
  lifeMs: number | undefined;
}

export interface TokenManagerStatus {
  /** Whether an access token is held. */
  loggedIn: boolean;
  /** Local time (ms since epoch) at which the access token expires, if known. */
  accessExpiresAt: number | undefined;
  /** Logins with username and password. */
  obtains: number;
  /** Refreshes (ahead of expiry, or after a 401). */
  refreshes: number;
  /** Refreshes done ahead of expiry. */
  refreshesAhead: number;
  /** 401 answers that made the client refresh or log in again. */
  unauthorized: number;
}

/** The `exp` and `iat` claims of a JWT, decoded without verifying; undefined if not a readable JWT. */
export function decodeJwtTimes(token: string): { exp: number; iat: number | undefined } | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown; iat?: unknown };
    if (typeof claims.exp !== 'number') return undefined;
    return { exp: claims.exp, iat: typeof claims.iat === 'number' ? claims.iat : undefined };
  } catch {
    return undefined;
  }
}

function hold(token: string, now = Date.now()): HeldToken {
  const times = decodeJwtTimes(token);
  if (!times) return { token, obtainedAt: now, expiresAt: undefined, lifeMs: undefined };
  // Life from the token's own claims; when `iat` is missing, from the local clock (best effort).
  // Claims are whole seconds and `iat` is rounded down, so the token may have been issued up to 1 s
  // after `iat`: count its life 1 s shorter than `exp - iat` says.
  const claimed = times.iat === undefined ? times.exp * 1000 - now : (times.exp - times.iat) * 1000;
  const lifeMs = Math.max(0, claimed - 1000);
  return { token, obtainedAt: now, expiresAt: now + lifeMs, lifeMs };
}

/** A login or refresh in flight, and how many callers still wait for it. */
interface SharedCall {
  promise: Promise<string>;
  controller: AbortController;
  waiting: number;
}

/** Wait for `shared` as one more caller, leaving (kind `aborted`) when `signal` aborts. */
function join(shared: SharedCall, signal: AbortSignal | undefined): Promise<string> {
  shared.waiting++;
  // A caller without a signal waits to the end: the call is never aborted while it waits.
  if (!signal) return shared.promise;
  return abortable(
    shared.promise,
    signal,
    () => new ClientError({ kind: 'aborted', method: 'POST', path: '/v1/auth', detail: 'aborted' }),
    () => {
      if (--shared.waiting === 0) shared.controller.abort(signal.reason);
    },
  );
}

export class TokenManager {
  readonly #http: Http;
  readonly #options: ResolvedClientOptions;
  #access: HeldToken | undefined;
  #refresh: HeldToken | undefined;
  /** One login or refresh at a time; concurrent callers share it. */
  #pending: SharedCall | undefined;
  #stats = { obtains: 0, refreshes: 0, refreshesAhead: 0, unauthorized: 0 };
  /** Undefined once read (or when there is none): it is read before the first login only. */
  #unreadCache: TokenCache | undefined;

  constructor(http: Http) {
    this.#http = http;
    this.#options = http.options;
    this.#unreadCache = http.options.tokenCache;
  }

  getStatus(): TokenManagerStatus {
    return { loggedIn: this.#access !== undefined, accessExpiresAt: this.#access?.expiresAt, ...this.#stats };
  }

  /** Forget the tokens (the next call logs in). */
  clear(): void {
    this.#access = undefined;
    this.#refresh = undefined;
  }

  /**
   * A usable access token: logs in when none is held, refreshes when less than
   * `max(refreshAheadFraction · life, min(refreshAheadMinMs, life / 2))` remains.
   */
  async accessToken(signal?: AbortSignal): Promise<string> {
    if (this.#pending) return join(this.#pending, signal);
    if (this.#unreadCache) this.#readCache(this.#unreadCache);
    const access = this.#access;
    if (!access) return this.#single(signal, (shared) => this.#login(shared));
    if (access.expiresAt === undefined || access.lifeMs === undefined) return access.token;
    const o = this.#options;
    const margin = Math.max(o.refreshAheadFraction * access.lifeMs, Math.min(o.refreshAheadMinMs, access.lifeMs / 2));
    const remaining = access.expiresAt - Date.now();
    if (remaining >= margin) return access.token;
    return this.#single(signal, async (shared) => {
      this.#stats.refreshesAhead++;
      try {
        return await this.#refreshOrLogin(shared);
      } catch (err) {
        // A refresh that fails for lack of a connection does not invalidate a token that still works.
        if (err instanceof ClientError && err.kind !== 'auth' && Date.now() < access.expiresAt! - 1000) {
          this.#options.logger.warn({ kind: err.kind, status: err.status }, 'could not refresh the access token ahead of expiry; using the current one');
          return access.token;
        }
        throw err;
      }
    });
  }

  /**
   * After a 401 answered a request made with `staleToken`: refresh, else log in again. When another
   * caller already replaced that token, nothing is done. Throws kind `auth` if login is refused.
   */
  async recover(staleToken: string, signal?: AbortSignal): Promise<void> {
    this.#stats.unauthorized++;
    if (this.#pending) {
      await join(this.#pending, signal);
      return;
    }
    if (this.#access && this.#access.token !== staleToken) return;
    this.#access = undefined;
    await this.#single(signal, (shared) => this.#refreshOrLogin(shared));
  }

  /** `POST /v1/auth/obtain`: log in with the configured credentials and keep both tokens. */
  async obtain(signal?: AbortSignal): Promise<TokenPair> {
    await this.#single(signal, (shared) => this.#login(shared));
    return { access: this.#access!.token, refresh: this.#refresh!.token };
  }

  /** `POST /v1/auth/refresh`: a new access token from the refresh token (login first if none). */
  async refresh(signal?: AbortSignal): Promise<string> {
    return this.#single(signal, (shared) => (this.#refresh ? this.#refreshOnly(shared) : this.#login(shared)));
  }

  /** `POST /v1/auth/verify`: whether the server accepts `token` (by default the current access token). */
  async verify(token?: string, signal?: AbortSignal): Promise<boolean> {
    const value = token ?? (await this.accessToken(signal));
    const spec: RequestSpec = { method: 'POST', path: 'v1/auth/verify', json: { token: value }, signal };
    const response = await this.#post(spec);
    if (response.status === 200) return true;
    if (response.status === 401) return false;
    throw errorFromResponse({ method: 'POST', path: '/v1/auth/verify', status: response.status, text: response.text, headers: response.headers });
  }

  /** Take the cached tokens, if any; a cache that cannot be read is no cache. */
  #readCache(cache: TokenCache): void {
    this.#unreadCache = undefined;
    let cached: ReturnType<TokenCache['load']>;
    try {
      cached = cache.load();
    } catch (err) {
      this.#options.logger.warn({ err: (err as Error).message }, 'cannot read the cached tokens; logging in');
      return;
    }
    if (!cached) return;
    this.#access = hold(cached.access.token, cached.access.obtainedAt);
    this.#refresh = hold(cached.refresh.token, cached.refresh.obtainedAt);
    this.#options.logger.debug({}, 'using cached tokens');
  }

  /** Keep the tokens held for the next process (a cache that cannot be written costs a login then, nothing now). */
  #writeCache(): void {
    const cache = this.#options.tokenCache;
    if (!cache || !this.#access || !this.#refresh) return;
    try {
      cache.save({ access: { token: this.#access.token, obtainedAt: this.#access.obtainedAt }, refresh: { token: this.#refresh.token, obtainedAt: this.#refresh.obtainedAt } });
    } catch (err) {
      this.#options.logger.warn({ err: (err as Error).message }, 'cannot cache the tokens');
    }
  }

  /**
   * Run `run` as the one login or refresh in flight, or join the one already in flight. The call
   * runs under a signal of its own, aborted only once every caller waiting for it has left: a
   * caller whose signal aborts (a poll iteration stopped by a drain) leaves with `aborted`, and the
   * others (a job's output upload that joined it) still get the token.
   */
  #single(signal: AbortSignal | undefined, run: (signal: AbortSignal) => Promise<string>): Promise<string> {
    if (this.#pending) return join(this.#pending, signal);
    const controller = new AbortController();
    const shared: SharedCall = { controller, waiting: 0, promise: Promise.resolve('') };
    shared.promise = run(controller.signal).finally(() => {
      if (this.#pending === shared) this.#pending = undefined;
    });
    // Nobody may wait for it (every caller left): its failure is theirs, already reported.
    shared.promise.catch(() => undefined);
    this.#pending = shared;
    return join(shared, signal);
  }

  async #refreshOrLogin(signal: AbortSignal | undefined): Promise<string> {
    const refresh = this.#refresh;
    // A refresh token about to expire is not worth a round trip that will be refused.
    const usable = refresh && (refresh.expiresAt === undefined || refresh.expiresAt - Date.now() > Math.min(5_000, refresh.lifeMs! / 4));
    if (!usable) return this.#login(signal);
    try {
      return await this.#refreshOnly(signal);
    } catch (err) {
      if (err instanceof ClientError && (err.status === 401 || err.status === 400)) {
        this.#options.logger.info({ status: err.status }, 'refresh token refused; logging in again');
        return this.#login(signal);
      }
      throw err;
    }
  }

  async #refreshOnly(signal: AbortSignal | undefined): Promise<string> {
    const spec: RequestSpec = { method: 'POST', path: 'v1/auth/refresh', json: { refresh: this.#refresh!.token }, signal };
    const response = await this.#post(spec);
    const body = this.#tokens(spec, response);
    if (typeof body.access !== 'string') throw this.#protocol(spec, 'no access token in the refresh answer');
    this.#access = hold(body.access);
    // With rotation on (not the reference's setting) the server sends a new refresh token too.
    if (typeof body.refresh === 'string') this.#refresh = hold(body.refresh);
    this.#stats.refreshes++;
    this.#writeCache();
    this.#options.logger.debug({ expiresInMs: this.#access.lifeMs }, 'access token refreshed');
    return body.access;
  }

  async #login(signal: AbortSignal | undefined): Promise<string> {
    const o = this.#options;
    const password = typeof o.password === 'function' ? o.password() : o.password;
    const spec: RequestSpec = { method: 'POST', path: 'v1/auth/obtain', json: { username: o.username, password }, op: 'login', signal };
    const response = await this.#post(spec);
    if (response.status === 401 || response.status === 400) {
      const err = errorFromResponse({ method: 'POST', path: '/v1/auth/obtain', status: response.status, text: response.text, headers: response.headers, op: 'login' });
      o.logger.error({ username: o.username, status: err.status, detail: err.detail }, 'login refused: check the username and password');
      this.#dropCache();
      throw err;
    }
    const body = this.#tokens(spec, response);
    if (typeof body.access !== 'string' || typeof body.refresh !== 'string') throw this.#protocol(spec, 'no tokens in the login answer');
    this.#access = hold(body.access);
    this.#refresh = hold(body.refresh);
    this.#stats.obtains++;
    this.#writeCache();
    o.logger.info({ username: o.username, server: this.#http.endpoints.current }, 'logged in');
    return body.access;
  }

  /** Tokens of credentials the server refuses are not kept for the next process either. */
  #dropCache(): void {
    try {
      this.#options.tokenCache?.drop();
    } catch (err) {
      this.#options.logger.warn({ err: (err as Error).message }, 'cannot remove the cached tokens');
    }
  }

  /** Auth calls carry neither `Authorization` (an expired token would be refused) nor `Node-Id`. */
  async #post(spec: RequestSpec): Promise<RawResponse> {
    const o = this.#options;
    return withRetries(
      async () => {
        const response = await this.#http.acrossEndpoints(() => this.#http.send(spec, {}));
        if (response.status === 502 || response.status === 503 || response.status === 504) this.#http.ensureOk(spec, response);
        return response;
      },
      { attempts: o.retryAttempts, totalMs: o.retryTotalMs, baseDelayMs: o.retryBaseDelayMs, maxDelayMs: o.retryMaxDelayMs },
      { what: `${spec.method} ${spec.path}`, log: o.logger, signal: spec.signal },
    );
  }

  #tokens(spec: RequestSpec, response: RawResponse): { access?: unknown; refresh?: unknown } {
    this.#http.ensureOk(spec, response);
    try {
      const body = JSON.parse(response.text) as unknown;
      if (body !== null && typeof body === 'object') return body as { access?: unknown; refresh?: unknown };
    } catch {
      // fall through
    }
    throw this.#protocol(spec, 'the answer is not a JSON object');
  }

  #protocol(spec: RequestSpec, detail: string): ClientError {
    return new ClientError({ kind: 'protocol', method: spec.method, path: `/${spec.path}`, detail });
  }
}
