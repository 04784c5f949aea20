/**
 * The HTTP layer: a timeout on every call, keep-alive agents shared by all requests, and
 * {@link Http.send} for one JSON attempt, over one of two engines (`jsonEngine`): got (the agent's:
 * one instance per server address, no got retries, no thrown HTTP errors), or node's own `http`
 * (`node-request.ts`, for short-lived commands, which then never load got). Uploads and live logs
 * always use got, loaded on their first use; downloads read node's own response (`stream`). Authentication and retries are layered on top
 * (`auth.ts`, `transport.ts`). Which address a request goes to is `endpoints.ts`'s choice: every
 * request of every kind tells it how the address answered.
 */
import http from 'node:http';
import type https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Got, Method } from 'got';
import { Endpoints } from './endpoints.js';
import { ClientError, errorFromNetwork, errorFromResponse, type Operation } from './errors.js';
import { nodeRequest, nodeStream } from './node-request.js';
import { timerMs, type ResolvedClientOptions } from './options.js';

let gotModule: Promise<typeof import('got')> | undefined;
let httpsModule: Promise<typeof import('node:https')> | undefined;

/** node's https (and TLS) is loaded by the first request that may need it: most CLI servers are plain http on loopback. */
function loadHttps(): Promise<typeof import('node:https')> {
  return (httpsModule ??= import('node:https'));
}

/**
 * got is loaded by the first request that needs it: a command that never does starts faster. Its
 * named export, not `default`: the CLI's short-commands script `require`s got (scripts/build-cli.mjs),
 * and there `default` is the whole module.
 */
function loadGot(): Promise<Got> {
  gotModule ??= import('got');
  return gotModule.then((m) => m.got);
}

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
  /** One got instance per address, by base URL, made on first use. */
  readonly #gots = new Map<string, Got>();
  readonly #httpAgent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  /** Made with the first request that may need it (see {@link loadHttps}). */
  #httpsAgent: https.Agent | undefined;
  readonly #closing = new AbortController();
  readonly #reachability = new Set<ReachabilityListener>();

  constructor(options: ResolvedClientOptions) {
    this.options = options;
    this.endpoints = new Endpoints(options.serverUrls, { failbackAfterMs: options.failbackAfterMs, logger: options.logger });
    this.endpoints.setProbe((url) => this.#probe(url));
  }

  /** Both keep-alive agents, as got takes them. */
  async #agents(): Promise<{ http: http.Agent; https: https.Agent }> {
    const { Agent } = await loadHttps();
    this.#httpsAgent ??= new Agent({ keepAlive: true, maxSockets: 32 });
    return { http: this.#httpAgent, https: this.#httpsAgent };
  }

  /** The agents a request to `url` needs (node-request.ts): https's only for an https URL. */
  async #agentsFor(url: URL): Promise<{ http: http.Agent; https?: https.Agent }> {
    return url.protocol === 'https:' ? this.#agents() : { http: this.#httpAgent };
  }

  /** The got instance of the address in use: get it once per attempt, right before the request. */
  async got(): Promise<Got> {
    const [got, agents] = await Promise.all([loadGot(), this.#agents()]);
    const url = this.endpoints.current;
    let bound = this.#gots.get(url);
    if (bound === undefined) {
      bound = this.#gotFor(got, agents, url);
      this.#gots.set(url, bound);
    }
    return bound;
  }

  /** A got bound to `url` that tells {@link Endpoints} how each of its requests went. */
  #gotFor(got: Got, agents: { http: http.Agent; https: https.Agent }, url: string): Got {
    return got.extend({
      prefixUrl: url,
      agent: agents,
      retry: { limit: 0 },
      throwHttpErrors: false,
      // A 3xx is an answer, as over node's own http: got would re-send a 307's body (a login's
      // password) to whatever address the answer names, and re-send a finish or an acquire.
      followRedirect: false,
      headers: { 'user-agent': this.options.userAgent },
      hooks: {
        afterResponse: [
          (response) => {
            this.#answered(url, response.statusCode, response.body);
            this.#called(response.request.options.method, response.requestUrl.pathname, response.statusCode, response.timings.phases.total);
            return response;
          },
        ],
        beforeError: [
          (error) => {
            this.#noAnswer(url, error);
            this.#called(error.options?.method ?? '?', error.options?.url instanceof URL ? error.options.url.pathname : '?', undefined, undefined, error);
            return error;
          },
        ],
      },
    });
  }

  /**
   * Each call to the server as one debug line (docs/OPERATIONS.md, "Reading the logs": the debug level
   * shows each call): method, path, status and milliseconds, or why no answer came. Never a header
   * or a body, which may hold a token or a password.
   */
  #called(method: string, path: string, status: number | undefined, ms: number | undefined, err?: unknown): void {
    const call = `${method} ${path}`;
    if (status !== undefined) this.options.logger.debug({ call, status, ms }, 'server call');
    else this.options.logger.debug({ call, err: err instanceof Error ? err.message : String(err) }, 'server call got no answer');
  }

  /** Tell {@link Endpoints} that `url` answered: a 5xx counts against it. */
  #answered(url: string, status: number, body: unknown): void {
    if (status >= 500) this.endpoints.failed(url, { kind: 'server', status, detail: serverDetail(body) });
    else this.endpoints.succeeded(url);
  }

  /** Tell {@link Endpoints} that a request to `url` failed without an answer (when it was the network's fault). */
  #noAnswer(url: string, error: unknown): void {
    const mapped = errorFromNetwork('', '', error);
    if (mapped.kind === 'network' || mapped.kind === 'timeout') this.endpoints.failed(url, { kind: mapped.kind, code: mapped.code, detail: mapped.detail });
  }

  /**
   * Whether the server at `url` answers: any status below 500 to a plain `GET readyz` under its base
   * — our server's readiness (503 while it starts, stops or its database does not answer), a 404 from
   * a server without it, which is an answer too. No credentials are sent.
   */
  async #probe(url: string): Promise<boolean> {
    const headers = { 'user-agent': this.options.userAgent };
    try {
      if (this.options.jsonEngine === 'node-http') {
        const target = new URL('readyz', url);
        const response = await nodeRequest({ url: target, method: 'GET', headers, agents: await this.#agentsFor(target), timeouts: this.#nodeTimeouts(), signal: this.#closing.signal });
        return response.status < 500;
      }
      const [got, agent] = await Promise.all([loadGot(), this.#agents()]);
      const response = await got(new URL('readyz', url), {
        agent,
        retry: { limit: 0 },
        throwHttpErrors: false,
        followRedirect: false,
        headers,
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
      response: timerMs(o.responseTimeoutMs + extraMs),
      request: timerMs(o.requestTimeoutMs + extraMs),
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

  /** The timeouts of one JSON attempt as node-request.ts takes them (lookup is part of connecting). */
  #nodeTimeouts(extraMs = 0): { connect: number; response: number; request: number } {
    const t = this.timeouts(extraMs);
    return { connect: t.connect, response: t.response, request: t.request };
  }

  /** One attempt of a JSON call. Resolves with any HTTP status; throws a ClientError without a response. */
  async send(spec: RequestSpec, headers: Record<string, string>): Promise<RawResponse> {
    const link = this.link(spec.signal);
    const all = { accept: 'application/json', ...headers, ...spec.headers };
    try {
      if (this.options.jsonEngine === 'node-http') {
        const url = this.endpoints.current;
        const started = performance.now();
        try {
          const target = new URL(spec.path, url);
          const response = await nodeRequest({
            url: target,
            method: spec.method,
            headers: { 'user-agent': this.options.userAgent, ...all },
            json: spec.json,
            agents: await this.#agentsFor(target),
            timeouts: this.#nodeTimeouts(spec.extraTimeoutMs),
            signal: link.signal,
          });
          this.#answered(url, response.status, response.text);
          this.#called(spec.method, target.pathname, response.status, Math.round(performance.now() - started));
          return response;
        } catch (err) {
          this.#noAnswer(url, err);
          this.#called(spec.method, `/${spec.path}`, undefined, undefined, err);
          throw err;
        }
      }
      const got = await this.got();
      const response = await got(spec.path, {
        method: spec.method,
        headers: all,
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

  /**
   * Open a download: the answer's head, whatever its status, and its body as node's stream for the
   * caller to read (see `nodeStream`). Over node's own `http` with either engine. Throws a ClientError
   * when no answer came.
   */
  async stream(spec: RequestSpec, headers: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage> {
    const url = this.endpoints.current;
    const started = performance.now();
    try {
      const target = new URL(spec.path, url);
      const t = this.transferTimeouts();
      const response = await nodeStream({
        url: target,
        method: spec.method,
        headers: { 'user-agent': this.options.userAgent, ...headers, ...spec.headers },
        json: spec.json,
        agents: await this.#agentsFor(target),
        timeouts: { connect: t.connect, response: t.response, idle: t.socket },
        signal,
      });
      // The body is the caller's to read: a 5xx counts against the address without its detail.
      this.#answered(url, response.statusCode ?? 0, '');
      this.#called(spec.method, target.pathname, response.statusCode ?? 0, Math.round(performance.now() - started));
      return response;
    } catch (err) {
      this.#noAnswer(url, err);
      this.#called(spec.method, `/${spec.path}`, undefined, undefined, err);
      throw errorFromNetwork(spec.method, `/${spec.path}`, err);
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
    this.#httpAgent.destroy();
    this.#httpsAgent?.destroy();
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
