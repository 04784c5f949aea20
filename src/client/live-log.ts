/**
 * The client side of the live job log extension (`protocol/live-log.ts`): append by offset (the
 * agent), read a piece from an offset, and follow over a web-socket that resumes from the last byte
 * received after a dropped connection, so a reader never sees a byte twice or misses one.
 */
import type WebSocket from 'ws';
import { LOG_HEADERS, type LogFrame, type LogGapBody } from '../protocol/live-log.js';
import { ClientError, errorFromNetwork } from './errors.js';
import { apiPath, pkSegment } from './http.js';
import type { Transport } from './transport.js';
import { backoffDelayMs } from './retry.js';
import { loadWebSocket, type WatchContext } from './watch.js';

/** The result of an append: the server's length (where the next append begins). */
export interface AppendResult {
  length: number;
}

/** A piece of the log read with {@link readLogPiece}. */
export interface LogPieceResult {
  /** Offset of `bytes[0]`; beyond the asked-for offset when a dropped range was skipped. */
  offset: number;
  bytes: Buffer;
  length: number;
  complete: boolean;
  maxBytes: number | null;
}

export function logPath(pk: number): string {
  return apiPath('v1', 'jobs', pkSegment(pk), 'log');
}

/**
 * One authenticated, retried request to the log route with a raw body or a raw answer (got's
 * options `body` and `responseType` as given). A non-2xx answer is the mapped ClientError.
 */
async function logRequest(
  transport: Transport,
  pk: number,
  method: 'GET' | 'POST',
  query: string,
  options: { body?: Buffer; contentType?: string; accept: string; responseType: 'text' | 'buffer' },
  signal?: AbortSignal,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string | Buffer }> {
  const path = logPath(pk);
  return transport.retrying(
    true,
    `${method} ${path}`,
    () =>
      transport.withAuth(
        async (headers) => {
          const link = transport.http.link(signal);
          try {
            const got = await transport.http.got();
            const res = (await got(`${path}?${query}`, {
              method,
              headers: { ...headers, accept: options.accept, ...(options.contentType ? { 'content-type': options.contentType } : {}) },
              ...(options.body ? { body: options.body } : {}),
              responseType: options.responseType,
              timeout: options.responseType === 'buffer' ? transport.http.transferTimeouts() : transport.http.timeouts(),
              signal: link.signal,
            })) as unknown as { statusCode: number; headers: Record<string, string | string[] | undefined>; body: string | Buffer };
            const text = Buffer.isBuffer(res.body) ? res.body.toString('utf8') : String(res.body);
            if (res.statusCode < 200 || res.statusCode >= 300) transport.http.ensureOk({ method, path }, { status: res.statusCode, headers: res.headers, text });
            return { status: res.statusCode, headers: res.headers, body: res.body as string | Buffer };
          } catch (err) {
            throw err instanceof ClientError ? err : errorFromNetwork(method, `/${path}`, err);
          } finally {
            link.dispose();
          }
        },
        { signal },
      ),
    signal,
  );
}

/**
 * `POST /v1/jobs/{pk}/log?offset=&max_bytes=` with raw bytes. Idempotent by design (the offset names
 * the bytes), so it is retried like a read. A gap is a ClientError with status 416 whose
 * {@link gapLength} says where to resend from.
 */
export async function appendLog(transport: Transport, pk: number, offset: number, bytes: Buffer, maxBytes: number, signal?: AbortSignal): Promise<AppendResult> {
  const response = await logRequest(
    transport,
    pk,
    'POST',
    `offset=${offset}&max_bytes=${maxBytes}`,
    { body: bytes, contentType: 'application/octet-stream', accept: 'application/json', responseType: 'text' },
    signal,
  );
  let length: unknown;
  try {
    length = (JSON.parse(String(response.body)) as { length?: unknown }).length;
  } catch {
    length = undefined;
  }
  if (typeof length !== 'number') throw new ClientError({ kind: 'protocol', method: 'POST', path: `/${logPath(pk)}`, status: response.status, detail: 'no length in the answer' });
  return { length };
}

/** The server's length from a gap answer (416), or undefined for any other error. */
export function gapLength(err: unknown): number | undefined {
  if (!(err instanceof ClientError) || err.status !== 416) return undefined;
  const length = (err.body as Partial<LogGapBody> | undefined)?.length;
  return typeof length === 'number' && Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

/** `GET /v1/jobs/{pk}/log?offset=`: the contiguous bytes from `offset` (held in memory: at most 16 MiB). */
export async function readLogPiece(transport: Transport, pk: number, offset: number, signal?: AbortSignal): Promise<LogPieceResult> {
  const response = await logRequest(transport, pk, 'GET', `offset=${offset}`, { accept: 'application/octet-stream, application/json', responseType: 'buffer' }, signal);
  const header = (name: string) => {
    const value = response.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const max = header(LOG_HEADERS.maxBytes);
  const begins = Number(header(LOG_HEADERS.offset) ?? offset);
  if (!Number.isSafeInteger(begins) || begins < offset) {
    // A piece may skip a dropped range, never go back: a reader that went back would read (and
    // print) the same bytes again, forever.
    throw new ClientError({ kind: 'protocol', method: 'GET', path: `/${logPath(pk)}`, status: response.status, detail: `a piece of the log that begins at ${String(header(LOG_HEADERS.offset))}, not at or after ${offset}` });
  }
  return {
    offset: begins,
    bytes: response.body as Buffer,
    length: Number(header(LOG_HEADERS.length) ?? 0),
    complete: header(LOG_HEADERS.complete) === 'true',
    maxBytes: max === undefined ? null : Number(max),
  };
}

/**
 * A control frame of the follow socket; null for one of a type this client does not know (a later
 * server's, ignored as before); undefined when `text` is not a frame at all, or a known one misshapen.
 */
function logFrame(text: string): LogFrame | null | undefined {
  let frame: Partial<Record<string, unknown>> | null;
  try {
    frame = JSON.parse(text) as Partial<Record<string, unknown>> | null;
  } catch {
    return undefined;
  }
  if (frame === null || typeof frame !== 'object') return undefined;
  const offsets = (...names: string[]) => names.every((name) => Number.isSafeInteger(frame[name]) && (frame[name] as number) >= 0);
  switch (frame.type) {
    case 'start':
      return offsets('offset') && (frame.max_bytes === null || typeof frame.max_bytes === 'number') ? (frame as LogFrame) : undefined;
    case 'dropped':
      return offsets('from', 'to') ? (frame as LogFrame) : undefined;
    case 'reset':
      return frame as LogFrame;
    case 'end':
      return offsets('length') ? (frame as LogFrame) : undefined;
    default:
      return typeof frame.type === 'string' ? null : undefined;
  }
}

/** What a log follower hears. */
export interface LogFollowHandlers {
  /** Bytes of the log, in order, beginning at `offset`. */
  onBytes(bytes: Buffer, offset: number): void;
  /** `[from, to)` was dropped (the log passed its cap). */
  onDropped?(from: number, to: number, maxBytes: number | null): void;
  /** The job started again: the log begins anew at 0. */
  onReset?(): void;
  /** The job has ended and every byte was received. */
  onEnd(length: number): void;
  /** A connection failed or was refused; `fatal` when following cannot go on (403, 404). */
  onError?(error: ClientError | Error, fatal: boolean): void;
}

export interface LogFollow {
  close(): void;
  /** The offset after the last byte received. */
  readonly offset: number;
}

/**
 * Follow job `pk`'s log from `offset` over `GET /v1/jobs/{pk}/log` upgraded to a web-socket,
 * reconnecting with back-off from the last byte received until the job has ended or `close()`.
 */
export function followLog(ctx: WatchContext, pk: number, offset: number, handlers: LogFollowHandlers): LogFollow {
  let cursor = offset;
  let maxBytes: number | null = null;
  let closed = false;
  let failures = 0;
  let socket: WebSocket | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** A refused token was renewed, and no frame has arrived since: a second refusal is final. */
  let renewed = false;

  const connect = async () => {
    if (closed) return;
    let token: string;
    try {
      token = await ctx.token();
    } catch (err) {
      retry(err instanceof Error ? err : new Error(String(err)), err instanceof ClientError && err.kind === 'auth');
      return;
    }
    const WebSocketClass = await loadWebSocket();
    if (closed) return;
    const base = ctx.serverUrl;
    const url = new URL(`${logPath(pk)}?offset=${cursor}`, base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocketClass(url, { headers: { authorization: `Bearer ${token}`, 'user-agent': ctx.userAgent }, handshakeTimeout: ctx.handshakeTimeoutMs });
    socket = ws;
    let ended = false;
    ws.on('message', (data, isBinary) => {
      if (closed) return;
      failures = 0;
      renewed = false;
      if (isBinary) {
        const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
        handlers.onBytes(bytes, cursor);
        cursor += bytes.length;
        return;
      }
      const frame = logFrame(data.toString());
      if (frame === undefined) {
        // Not a frame of ours: going on could misplace every byte after it (a lost `dropped`).
        retry(new ClientError({ kind: 'protocol', method: 'GET', path: `/${logPath(pk)}`, detail: 'a control frame that is not a log frame' }), true);
        return;
      }
      if (frame === null) return;
      if (frame.type === 'start') {
        maxBytes = frame.max_bytes;
        cursor = frame.offset;
      } else if (frame.type === 'dropped') {
        handlers.onDropped?.(frame.from, frame.to, maxBytes);
        cursor = frame.to;
      } else if (frame.type === 'reset') {
        cursor = 0;
        handlers.onReset?.();
      } else if (frame.type === 'end') {
        ended = true;
        closed = true;
        ws.close();
        handlers.onEnd(frame.length);
      }
    });
    ws.on('unexpected-response', (_request, response) => {
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('end', () => {
        const status = response.statusCode ?? 0;
        const text = Buffer.concat(chunks).toString('utf8');
        let detail = text;
        try {
          detail = (JSON.parse(text) as { detail?: string }).detail ?? text;
        } catch {
          // not JSON
        }
        // Anything but a refusal of ours (a 2xx is the log served as plain HTTP): something between
        // here and the server does not pass web-sockets, which no reconnect changes.
        const noWebSocket = status < 400 || status === 405 || status === 426 || status === 501;
        if (status >= 300 && status < 400) {
          detail = `HTTP ${status} instead of upgrading to a web-socket: a redirect to ${String(response.headers.location ?? '(no location)')}, which is not followed (is the server URL right?)`;
        } else if (noWebSocket) {
          const shown = status < 400 ? '' : `: ${detail.slice(0, 200)}`;
          detail = `HTTP ${status} instead of upgrading to a web-socket (a proxy that does not pass web-sockets?)${shown}`;
        }
        const error = new ClientError({ kind: status === 401 ? 'auth' : status === 403 ? 'forbidden' : status === 404 ? 'not-found' : status >= 500 ? 'server' : 'bad-request', method: 'GET', path: `/${logPath(pk)}`, status, detail });
        if (status === 401 && !renewed && ctx.renew && !closed) {
          // The token was refused (revoked by a password change, the server reset): nothing else
          // renews it while only the log is followed, so renew it once, as a call does after a 401.
          renewed = true;
          drop(ws);
          ctx.renew(token).then(
            () => retry(error, false),
            (err: unknown) => retry(err instanceof Error ? err : error, err instanceof ClientError && err.kind === 'auth'),
          );
          return;
        }
        ws.terminate();
        if (status === 416 && cursor > 0) {
          // The log is shorter than what was received: the job was reset and runs again while this
          // follower was away. Its new run's log starts at 0.
          cursor = 0;
          handlers.onReset?.();
          retry(error, false);
          return;
        }
        if (status >= 500 && !noWebSocket) ctx.failed?.(base, { kind: 'server', status, detail });
        // A 5xx (a server restarting), 408 and 429 may pass; any other answer will be the same again.
        retry(error, noWebSocket || (status < 500 && status !== 408 && status !== 429));
      });
    });
    ws.on('error', (err) => {
      if (ended) return;
      const error = errorFromNetwork('GET', `/${logPath(pk)}`, err);
      if (error.kind === 'network' || error.kind === 'timeout') ctx.failed?.(base, { kind: error.kind, code: error.code, detail: error.detail });
      retry(error, false);
    });
    ws.on('close', () => {
      if (!ended && !closed) retry(new Error('the log socket closed'), false);
    });
  };

  /** Stop hearing `ws` and cut it. */
  const drop = (ws: WebSocket | undefined) => {
    ws?.removeAllListeners();
    ws?.on('error', () => {});
    ws?.terminate();
    if (socket === ws) socket = undefined;
  };

  const retry = (error: Error, fatal: boolean) => {
    if (closed || timer) return;
    drop(socket);
    handlers.onError?.(error, fatal);
    if (fatal) {
      closed = true;
      return;
    }
    failures++;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, backoffDelayMs(failures - 1, 250, 5_000));
  };

  void connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      socket?.removeAllListeners();
      socket?.on('error', () => {});
      socket?.terminate();
    },
    get offset() {
      return cursor;
    },
  };
}
