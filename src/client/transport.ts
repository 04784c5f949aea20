/**
 * One authenticated API call: `Authorization: Bearer`, `Node-Id` when a node pk is set, one retry
 * after a 401 (refresh or log in again first), and — for idempotent calls only — retries of transient
 * failures with back-off (`retry.ts`). Non-idempotent calls get exactly one attempt (plus the 401 one,
 * which is safe: the server refuses a request before acting on it).
 */
import type { TokenManager } from './auth.js';
import { ClientError } from './errors.js';
import type { Http, RawResponse, RequestSpec } from './http.js';
import { withRetries } from './retry.js';

export interface CallSpec extends RequestSpec {
  /** Retry transient failures (network, timeouts, 502/503/504) with back-off. */
  idempotent: boolean;
  /** Send `Node-Id` when a node pk is set. @default true */
  nodeId?: boolean;
}

export class Transport {
  readonly http: Http;
  readonly auth: TokenManager;
  readonly #nodePk: () => number | null;

  constructor(http: Http, auth: TokenManager, nodePk: () => number | null) {
    this.http = http;
    this.auth = auth;
    this.#nodePk = nodePk;
  }

  /** The headers of an authenticated request with `token`. */
  headers(token: string, nodeId = true): Record<string, string> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    const pk = this.#nodePk();
    if (nodeId && pk !== null) headers['node-id'] = String(pk);
    return headers;
  }

  /**
   * Run `attempt` with auth headers; on a 401, recover the token and run it once more. `attempt` must
   * throw a ClientError (kind `auth`, status 401) for a 401 answer.
   */
  async withAuth<T>(attempt: (headers: Record<string, string>) => Promise<T>, opts: { nodeId?: boolean | undefined; signal?: AbortSignal | undefined } = {}): Promise<T> {
    const observed = async (headers: Record<string, string>): Promise<T> => {
      try {
        const result = await this.http.acrossEndpoints(() => attempt(headers));
        this.http.noteAttempt(undefined);
        return result;
      } catch (err) {
        this.http.noteAttempt(err);
        throw err;
      }
    };
    const token = await this.auth.accessToken(opts.signal);
    try {
      return await observed(this.headers(token, opts.nodeId ?? true));
    } catch (err) {
      if (!(err instanceof ClientError) || err.status !== 401) throw err;
      this.http.options.logger.debug({ call: `${err.method} ${err.path}` }, '401: renewing the token and retrying once');
      await this.auth.recover(token, opts.signal);
      const fresh = await this.auth.accessToken(opts.signal);
      return observed(this.headers(fresh, opts.nodeId ?? true));
    }
  }

  /** Retry `run` per the client's policy when `idempotent`, else run it once. */
  async retrying<T>(idempotent: boolean, what: string, run: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (!idempotent) return run();
    const o = this.http.options;
    const link = this.http.link(signal);
    try {
      return await withRetries(run, { attempts: o.retryAttempts, totalMs: o.retryTotalMs, baseDelayMs: o.retryBaseDelayMs, maxDelayMs: o.retryMaxDelayMs }, { what, log: o.logger, signal: link.signal });
    } finally {
      link.dispose();
    }
  }

  /** A call whose answer must be 2xx; returns the raw answer. */
  async request(spec: CallSpec): Promise<RawResponse> {
    return this.retrying(
      spec.idempotent,
      `${spec.method} ${spec.path}`,
      () => this.withAuth(async (headers) => this.http.ensureOk(spec, await this.http.send(spec, headers)), { nodeId: spec.nodeId, signal: spec.signal }),
      spec.signal,
    );
  }

  /** A call whose answer is JSON. A 2xx that is not JSON is a ClientError of kind `protocol`. */
  async json<T>(spec: CallSpec): Promise<T> {
    const response = await this.request(spec);
    try {
      return JSON.parse(response.text) as T;
    } catch {
      throw new ClientError({
        kind: 'protocol',
        method: spec.method,
        path: `/${spec.path}`,
        status: response.status,
        detail: `expected JSON, got ${response.text === '' ? 'an empty body' : `${String(response.headers['content-type'] ?? 'no content type')}`}`,
      });
    }
  }
}
