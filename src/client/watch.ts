/**
 * Follow a job's notifications over the web-socket `ws(s)://…/v1/jobs/{pk}` (the reference's job channel).
 *
 * Authentication: `Authorization: Bearer` on the upgrade request; when the server refuses that
 * (401/403), the next attempt adds `?token=` (docs/COMPATIBILITY.md, B15; the reference ignores both and only
 * accepts jobs created with web-socket notifications). The watcher reconnects with jittered back-off
 * until closed; failures are reported through `onError`, never thrown. A ping every
 * `pingIntervalMs` detects a dead peer. Frames are parsed as {@link JobNotification}.
 */
import type WebSocket from 'ws';
import type { JobNotification } from '../protocol/wire.js';
import type { EndpointFailure } from './endpoints.js';
import { ClientError } from './errors.js';
import { pkSegment } from './http.js';
import type { ClientLogger } from './options.js';
import { backoffDelayMs } from './retry.js';

export interface WatchError {
  /**
   * `auth`: the token was refused (401) or could not be obtained; `refused`: the server refused the
   * socket (e.g. 403, no such job, or — on the reference — no web-socket notification on the job);
   * `network`: no connection or a dropped one; `bad-frame`: a frame that is not a notification.
   */
  kind: 'auth' | 'refused' | 'network' | 'bad-frame';
  message: string;
  status?: number;
  /** Consecutive failed attempts so far. */
  attempt: number;
}

export interface WatchOptions {
  /** Called for every failure; the watcher keeps trying until closed (or `maxAttempts`). */
  onError?: (error: WatchError) => void;
  /** Called on each successful connection (after a reconnect too). */
  onOpen?: () => void;
  /** Called when the watcher gives up after `maxAttempts` consecutive failures. */
  onGiveUp?: (last: WatchError) => void;
  /** @default 30000 */
  pingIntervalMs?: number;
  /** @default 500 */
  reconnectBaseDelayMs?: number;
  /** @default 30000 */
  reconnectMaxDelayMs?: number;
  /** Consecutive failed connection attempts before giving up. @default Infinity */
  maxAttempts?: number;
}

export interface JobWatch {
  /** Stop watching; idempotent. No callback runs after it returns. */
  close(): void;
  /** Whether the socket is open right now. */
  readonly connected: boolean;
}

/** What a watcher needs from the client. */
export interface WatchContext {
  /** The server's http(s) base URL, ending with `/`: the address in use, read at each (re)connect. */
  readonly serverUrl: string;
  /** Told that `url` could not be reached or answered 5xx, so that the next connect tries another address. */
  failed?(url: string, failure: EndpointFailure): void;
  token(): Promise<string>;
  /** After `staleToken` was refused (401): refresh it, else log in again (as a call does). */
  renew?(staleToken: string): Promise<void>;
  userAgent: string;
  handshakeTimeoutMs: number;
  log: ClientLogger;
}

/** `http://h:1/x/` → `ws://h:1/x/v1/jobs/5` (no trailing slash: the reference route has none). */
export function jobSocketUrl(serverUrl: string, pk: number): URL {
  const url = new URL(`v1/jobs/${pkSegment(pk)}`, serverUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url;
}

export function isJobNotification(value: unknown): value is JobNotification {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.transition === 'string' && typeof v.pk === 'number';
}

let wsModule: Promise<typeof import('ws')> | undefined;

/** `ws` is loaded by the first watch: the commands that never watch (most of the CLI) start faster. */
export function loadWebSocket(): Promise<typeof WebSocket> {
  wsModule ??= import('ws');
  return wsModule.then((m) => m.default);
}

export function watchJob(ctx: WatchContext, pk: number, onMessage: (message: JobNotification) => void, options: WatchOptions = {}): JobWatch {
  return new JobWatcher(ctx, pk, onMessage, options);
}

class JobWatcher implements JobWatch {
  readonly #ctx: WatchContext;
  readonly #pk: number;
  readonly #onMessage: (message: JobNotification) => void;
  readonly #opts: Required<Pick<WatchOptions, 'pingIntervalMs' | 'reconnectBaseDelayMs' | 'reconnectMaxDelayMs' | 'maxAttempts'>> & WatchOptions;
  #ws: WebSocket | undefined;
  #closed = false;
  #connected = false;
  #failures = 0;
  #useQueryToken = false;
  #timer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #lastError: WatchError | undefined;

  constructor(ctx: WatchContext, pk: number, onMessage: (message: JobNotification) => void, options: WatchOptions) {
    this.#ctx = ctx;
    this.#pk = pk;
    this.#onMessage = onMessage;
    this.#opts = { pingIntervalMs: 30_000, reconnectBaseDelayMs: 500, reconnectMaxDelayMs: 30_000, maxAttempts: Infinity, ...options };
    jobSocketUrl(ctx.serverUrl, pk); // validates pk now, synchronously
    void this.#connect();
  }

  get connected(): boolean {
    return this.#connected;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#connected = false;
    clearTimeout(this.#timer);
    clearTimeout(this.#pingTimer);
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws) {
      if (ws.readyState === ws.OPEN) ws.close(1000, 'watch closed');
      else ws.terminate();
    }
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    let token: string;
    let WebSocketClient: typeof WebSocket;
    try {
      [token, WebSocketClient] = await Promise.all([this.#ctx.token(), loadWebSocket()]);
    } catch (err) {
      const kind = err instanceof ClientError && err.kind === 'auth' ? 'auth' : 'network';
      this.#fail({ kind, message: err instanceof Error ? err.message : String(err), attempt: this.#failures + 1 });
      return;
    }
    if (this.#closed) return;
    const base = this.#ctx.serverUrl;
    const url = jobSocketUrl(base, this.#pk);
    if (this.#useQueryToken) url.searchParams.set('token', token);
    const ws = new WebSocketClient(url, {
      headers: { authorization: `Bearer ${token}`, 'user-agent': this.#ctx.userAgent },
      handshakeTimeout: this.#ctx.handshakeTimeoutMs,
      maxPayload: 1024 * 1024,
    });
    this.#ws = ws;
    this.#lastError = undefined;
    let alive = true;

    ws.on('open', () => {
      if (this.#closed || this.#ws !== ws) return;
      this.#connected = true;
      this.#failures = 0;
      this.#ctx.log.debug({ job: this.#pk }, 'watching job');
      const ping = () => {
        if (this.#closed || this.#ws !== ws) return;
        if (!alive) {
          ws.terminate();
          return;
        }
        alive = false;
        ws.ping();
        this.#pingTimer = setTimeout(ping, this.#opts.pingIntervalMs);
      };
      this.#pingTimer = setTimeout(ping, this.#opts.pingIntervalMs);
      this.#safely(() => this.#opts.onOpen?.());
    });
    ws.on('pong', () => {
      alive = true;
    });
    ws.on('message', (data, isBinary) => {
      if (this.#closed || this.#ws !== ws) return;
      alive = true;
      let parsed: unknown;
      try {
        parsed = JSON.parse(isBinary ? Buffer.from(data as Buffer).toString('utf8') : data.toString());
      } catch {
        parsed = undefined;
      }
      if (!isJobNotification(parsed)) {
        this.#report({ kind: 'bad-frame', message: 'a frame that is not a job notification', attempt: 0 });
        return;
      }
      const message = parsed;
      this.#safely(() => this.#onMessage(message));
    });
    ws.on('error', (err) => {
      if (this.#closed || this.#ws !== ws) return;
      const match = /Unexpected server response: (\d{3})/.exec(err.message);
      if (match) {
        const status = Number(match[1]);
        // Refused with the header: try `?token=` next time, and back again if that is refused too.
        if (status === 401 || status === 403) this.#useQueryToken = !this.#useQueryToken;
        if (status >= 500) this.#ctx.failed?.(base, { kind: 'server', status, detail: 'web-socket refused' });
        this.#lastError = { kind: status === 401 ? 'auth' : 'refused', status, message: `the server refused the web-socket (${status})`, attempt: this.#failures + 1 };
      } else {
        this.#lastError = { kind: 'network', message: err.message.replace(/\s*wss?:\/\/\S+/g, ''), attempt: this.#failures + 1 };
        this.#ctx.failed?.(base, { kind: 'network', code: (err as NodeJS.ErrnoException).code, detail: this.#lastError.message });
      }
    });
    ws.on('close', (code) => {
      if (this.#ws !== ws) return;
      clearTimeout(this.#pingTimer);
      const wasConnected = this.#connected;
      this.#connected = false;
      this.#ws = undefined;
      if (this.#closed) return;
      const error = this.#lastError ?? {
        kind: 'network' as const,
        message: wasConnected ? `the web-socket closed (code ${code})` : 'the web-socket could not be opened',
        attempt: this.#failures + 1,
      };
      this.#fail(error);
    });
  }

  #fail(error: WatchError): void {
    if (this.#closed) return;
    this.#failures++;
    const report = { ...error, attempt: this.#failures };
    this.#report(report);
    if (this.#failures >= this.#opts.maxAttempts) {
      this.#closed = true;
      this.#safely(() => this.#opts.onGiveUp?.(report));
      return;
    }
    const delay = backoffDelayMs(this.#failures - 1, this.#opts.reconnectBaseDelayMs, this.#opts.reconnectMaxDelayMs);
    this.#timer = setTimeout(() => void this.#connect(), delay);
  }

  #report(error: WatchError): void {
    this.#ctx.log.debug({ job: this.#pk, kind: error.kind, status: error.status, attempt: error.attempt }, `job watch: ${error.message}`);
    this.#safely(() => this.#opts.onError?.(error));
  }

  /** A throwing callback must not kill the watcher. */
  #safely(run: () => void): void {
    try {
      run();
    } catch (err) {
      this.#ctx.log.warn({ job: this.#pk, err: err instanceof Error ? err.message : String(err) }, 'job watch callback threw');
    }
  }
}
