/**
 * The HTTP layer: one got instance per server address (own keep-alive agents shared by all, no got
 * retries, no thrown HTTP errors), a timeout on every call, and {@link Http.send} for one JSON
 * attempt. Authentication and retries are layered on top (`auth.ts`, `transport.ts`). Which address
 * a request goes to is `endpoints.ts`'s choice: every request of every kind (JSON, uploads, downloads,
 * live logs) tells it how the address answered, through got's hooks.
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import got, { type Got, type Method } from 'got';
import { Endpoints } from './endpoints.js';
import { ClientError, errorFromNetwork, errorFromResponse, type Operation } from './errors.js';
import type { ResolvedClientOptions } from './options.js';

export interface RequestSpec {
  method: Method;
  /** Relative to the server URL, no leading slash, already percent-encoded (see {@link apiPath}). */
  path: string;
  json?: unknown;
  headers?: Record<string, string>;
  op?: Operation;
  /** Added to the response and total timeouts (long polls). */
  extraTimeoutMs?: number;
  signal?: AbortSignal | undefined;
}

/**
 * Told after every attempt of every call: `true` when the server answered (any HTTP status proves it
 * reachable), `false` with the error when no answer came (network failure, timeout).
 */
export type ReachabilityListener = (answered: boolean, error?: ClientError) => void;

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

export class Http {
  readonly options: ResolvedClientOptions;
  /** The server's addresses and the one in use. */
  readonly endpoints: Endpoints;
  /** One got instance per address, by base URL. */
  readonly #gots = new Map<string, Got>();
  readonly #agents: { http: http.Agent; https: https.Agent };
  readonly #closing = new AbortController();
  readonly #reachability = new Set<ReachabilityListener>();

  constructor(options: ResolvedClientOptions) {
    this.options = options;
    this.#agents = {
      http: new http.Agent({ keepAlive: true, maxSockets: 32 }),
      https: new https.Agent({ keepAlive: true, maxSockets: 32 }),
    };
    this.endpoints = new Endpoints(options.serverUrls, { failbackAfterMs: options.failbackAfterMs, logger: options.logger });
    for (const url of options.serverUrls) this.#gots.set(url, this.#gotFor(url));
    this.endpoints.setProbe((url) => this.#probe(url));
  }

  /** The got instance of the address in use: read it once per attempt, right before the request. */
  get got(): Got {
    return this.#gots.get(this.endpoints.current)!;
  }

  /** A got bound to `url` that tells {@link Endpoints} how each of its requests went. */
  #gotFor(url: string): Got {
    const endpoints = this.endpoints;
    return got.extend({
      prefixUrl: url,
      agent: this.#agents,
      retry: { limit: 0 },
      throwHttpErrors: false,
      headers: { 'user-agent': this.options.userAgent },
      hooks: {
        afterResponse: [
          (response) => {
            if (response.statusCode >= 500) {
              endpoints.failed(url, { kind: 'server', status: response.statusCode, detail: serverDetail(response.body) });
            } else endpoints.succeeded(url);
            return response;
          },
        ],
        beforeError: [
          (error) => {
            const mapped = errorFromNetwork('', '', error);
            if (mapped.kind === 'network' || mapped.kind === 'timeout') endpoints.failed(url, { kind: mapped.kind, code: mapped.code, detail: mapped.detail });
            return error;
          },
        ],
      },
    });
  }

  /**
   * Whether the server at `url` answers: any status below 500 to a plain `GET readyz` under its base
   * — our server's readiness (503 while it starts, stops or its database does not answer), a 404 from
   * a server without it, which is an answer too. No credentials are sent.
   */
  async #probe(url: string): Promise<boolean> {
    try {
      const response = await got(new URL('readyz', url), {
        agent: this.#agents,
        retry: { limit: 0 },
        throwHttpErrors: false,
        followRedirect: false,
        headers: { 'user-agent': this.options.userAgent },
        timeout: this.timeouts(),
        signal: this.#closing.signal,
      });
      return response.statusCode < 500;
    } catch {
      return false;
    }
  }

  /**
   * Run one attempt `run` (which reads {@link Http.got} for its request) and, when it failed before
   * anything was sent — the connection was refused or could not be made — and the client has since
   * moved to an address this call has not tried, run it again there at once. Safe for every call,
   * idempotent or not: a request that never left cannot have acted.
   */
  async acrossEndpoints<T>(run: () => Promise<T>): Promise<T> {
    const tried = new Set<string>();
    for (;;) {
      const url = this.endpoints.current;
      tried.add(url);
      try {
        return await run();
      } catch (err) {
        if (!(err instanceof ClientError) || !neverSent(err) || tried.has(this.endpoints.current)) throw err;
        this.options.logger.debug({ call: `${err.method} ${err.path}`, from: url, to: this.endpoints.current }, 'not sent; trying the next server address');
      }
    }
  }

  /** Aborted by {@link Http.close}; every request listens to it. */
  get closingSignal(): AbortSignal {
    return this.#closing.signal;
  }

  /**
   * The signal of one request: the client's closing signal, plus the caller's if any. Linked by hand
   * and unlinked by `dispose()` (rather than `AbortSignal.any`), so that a long-lived daemon making
   * calls with signals accumulates no listeners on the client's signal.
   */
  link(signal: AbortSignal | undefined): { signal: AbortSignal; dispose: () => void } {
    const closing = this.#closing.signal;
    if (!signal) return { signal: closing, dispose: () => {} };
    const controller = new AbortController();
    if (closing.aborted || signal.aborted) {
      controller.abort(closing.aborted ? closing.reason : signal.reason);
      return { signal: controller.signal, dispose: () => {} };
    }
    const onClosing = () => controller.abort(closing.reason);
    const onCaller = () => controller.abort(signal.reason);
    closing.addEventListener('abort', onClosing, { once: true });
    signal.addEventListener('abort', onCaller, { once: true });
    return {
      signal: controller.signal,
      dispose: () => {
        closing.removeEventListener('abort', onClosing);
        signal.removeEventListener('abort', onCaller);
      },
    };
  }

  /** Listen to the outcome of every attempt (see {@link ReachabilityListener}); returns the unsubscriber. */
  onReachability(listener: ReachabilityListener): () => void {
    this.#reachability.add(listener);
    return () => this.#reachability.delete(listener);
  }

  /** Tell the listeners how one attempt ended: `undefined` for success, else what it threw. */
  noteAttempt(outcome: unknown): void {
    if (this.#reachability.size === 0) return;
    let answered: boolean;
    if (outcome === undefined) answered = true;
    else if (!(outcome instanceof ClientError) || outcome.kind === 'aborted') return;
    else answered = outcome.kind !== 'network' && outcome.kind !== 'timeout';
    for (const listener of this.#reachability) listener(answered, answered ? undefined : (outcome as ClientError));
  }

  /** Timeouts of an ordinary call. */
  timeouts(extraMs = 0): { lookup: number; connect: number; secureConnect: number; response: number; request: number } {
    const o = this.options;
    return {
      lookup: o.connectTimeoutMs,
      connect: o.connectTimeoutMs,
      secureConnect: o.connectTimeoutMs,
      response: o.responseTimeoutMs + extraMs,
      request: o.requestTimeoutMs + extraMs,
    };
  }

  /** Timeouts of a streamed transfer: no total limit, but no byte may stall longer than the idle limit. */
  transferTimeouts(): { lookup: number; connect: number; secureConnect: number; response: number; socket: number } {
    const o = this.options;
    return {
      lookup: o.connectTimeoutMs,
      connect: o.connectTimeoutMs,
      secureConnect: o.connectTimeoutMs,
      response: Math.max(o.responseTimeoutMs, o.transferIdleTimeoutMs),
      socket: o.transferIdleTimeoutMs,
    };
  }

  /** One attempt of a JSON call. Resolves with any HTTP status; throws a ClientError without a response. */
  async send(spec: RequestSpec, headers: Record<string, string>): Promise<RawResponse> {
    const link = this.link(spec.signal);
    try {
      const response = await this.got(spec.path, {
        method: spec.method,
        headers: { accept: 'application/json', ...headers, ...spec.headers },
        ...(spec.json === undefined ? {} : { json: spec.json }),
        responseType: 'text',
        timeout: this.timeouts(spec.extraTimeoutMs),
        signal: link.signal,
      });
      return { status: response.statusCode, headers: response.headers, text: response.body };
    } catch (err) {
      throw errorFromNetwork(spec.method, `/${spec.path}`, err);
    } finally {
      link.dispose();
    }
  }

  /** Throws the mapped ClientError unless the status is 2xx. */
  ensureOk(spec: RequestSpec, response: RawResponse): RawResponse {
    if (response.status >= 200 && response.status < 300) return response;
    throw errorFromResponse({
      method: spec.method,
      path: `/${spec.path}`,
      status: response.status,
      text: response.text,
      headers: response.headers,
      op: spec.op ?? 'other',
    });
  }

  /** Abort in-flight requests and close idle sockets. */
  close(): void {
    this.#closing.abort();
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }
}

/** Network codes of a connection that never opened: the request cannot have reached the server. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** Whether a failed attempt is known never to have reached the server. */
export function neverSent(err: ClientError): boolean {
  if (err.kind === 'network') return err.code !== undefined && NOT_CONNECTED.has(err.code);
  return err.kind === 'timeout' && /^(?:lookup|connect|secureConnect) timeout$/.test(err.detail);
}

/** The `detail` of a 5xx body, for the log line of a switch. */
function serverDetail(body: unknown): string {
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : '';
  try {
    const parsed = JSON.parse(text) as { detail?: unknown; code?: unknown };
    if (typeof parsed.code === 'string' && parsed.code.startsWith('UFDL_ERR_')) return `${parsed.code}: ${String(parsed.detail ?? '')}`;
    if (typeof parsed.detail === 'string') return parsed.detail;
  } catch {
    // not JSON
  }
  return 'server error';
}

/** A primary key as a URL segment; a TypeError for anything but a positive integer. */
export function pkSegment(pk: number, what = 'pk'): string {
  if (!Number.isSafeInteger(pk) || pk <= 0) throw new TypeError(`${what} must be a positive integer, got ${JSON.stringify(pk)}`);
  return String(pk);
}

/**
 * A name or type string as one URL path segment: `Compressed<JSON, 8>` → `Compressed%3CJSON%2C%208%3E`.
 * Empty, `.` and `..` cannot be one segment (URL parsing would drop or resolve them): TypeError.
 */
export function textSegment(value: string, what: string): string {
  if (typeof value !== 'string' || value === '' || value === '.' || value === '..') {
    throw new TypeError(`${what} must be a non-empty string other than '.' and '..', got ${JSON.stringify(value)}`);
  }
  return encodeURIComponent(value);
}

/** Join already-encoded segments into an API path: `apiPath('v1', 'jobs', '5')` → `v1/jobs/5`. */
export function apiPath(...segments: string[]): string {
  return segments.join('/');
}
