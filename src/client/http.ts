/**
 * The HTTP layer: one got instance per client (own keep-alive agents, no got retries, no thrown HTTP
 * errors), a timeout on every call, and {@link Http.send} for one JSON attempt. Authentication and
 * retries are layered on top (`auth.ts`, `transport.ts`).
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import got, { type Got, type Method } from 'got';
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
  readonly got: Got;
  readonly options: ResolvedClientOptions;
  readonly #agents: { http: http.Agent; https: https.Agent };
  readonly #closing = new AbortController();
  readonly #reachability = new Set<ReachabilityListener>();

  constructor(options: ResolvedClientOptions) {
    this.options = options;
    this.#agents = {
      http: new http.Agent({ keepAlive: true, maxSockets: 32 }),
      https: new https.Agent({ keepAlive: true, maxSockets: 32 }),
    };
    this.got = got.extend({
      prefixUrl: options.serverUrl,
      agent: this.#agents,
      retry: { limit: 0 },
      throwHttpErrors: false,
      headers: { 'user-agent': options.userAgent },
    });
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
