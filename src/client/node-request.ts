/**
 * Requests over node's own `http`/`https`, without got. Two uses:
 * - {@link nodeRequest}: one JSON attempt, the engine of short-lived commands (`jsonEngine:
 *   'node-http'`). Loading got costs a one-shot CLI command more than the rest of its work
 *   (docs/BENCHMARKS.md, "Queue at depth"); node's modules are already in the binary.
 * - {@link nodeStream}: the response of a download, as node's own stream. got's stream layer re-emits
 *   every 64 KiB piece through a progress event and its own buffer, which cost a large download about
 *   a quarter of its speed (docs/BENCHMARKS.md, "Outputs").
 *
 * Each does only what this client needs — a body, the connect, response, total and idle timeouts, the
 * abort signal — and leaves the rest to the layers above, as with got: retries (`transport.ts`), error
 * mapping (`errors.ts`), which address (`endpoints.ts`). No redirects are followed (a 3xx is an answer
 * like any other) and nothing is compressed.
 *
 * Failures are thrown shaped like got's (`name`, `code`, `event`), so {@link errorFromNetwork} maps
 * both engines' errors the same way.
 */
import { constants as bufferConstants } from 'node:buffer';
import http from 'node:http';
import type https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { ClientError } from './errors.js';

interface NodeSpec {
  url: URL;
  method: string;
  headers: Record<string, string>;
  /** Sent as `application/json`. */
  json?: unknown;
  /** https's is needed (and node's https loaded) only for an https URL. */
  agents: { http: http.Agent; https?: https.Agent };
  signal?: AbortSignal | undefined;
}

export interface NodeRequestSpec extends NodeSpec {
  /** connect: until the socket is connected (TLS included); response: from the request sent to the headers; request: in all. */
  timeouts: { connect: number; response: number; request: number };
}

export interface NodeStreamSpec extends NodeSpec {
  /** connect and response as for {@link NodeRequestSpec}; idle: the longest the body may stall (no total limit). */
  timeouts: { connect: number; response: number; idle: number };
}

export interface NodeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** A timeout error as got words it: `event` names the phase that took too long. */
function timeoutError(event: string, ms: number): Error {
  return Object.assign(new Error(`Timeout awaiting '${event}' for ${ms}ms`), { name: 'TimeoutError', code: 'ETIMEDOUT', event });
}

function closedMidAnswer(): Error {
  return Object.assign(new Error('the server closed the connection mid-answer'), { code: 'ECONNRESET' });
}

/**
 * The largest JSON answer read: no answer of the API comes near it, and past it node cannot make
 * the text of the body (it threw out of the response's handler: the command died with a stack
 * trace, after holding it all in memory).
 */
const MAX_ANSWER_BYTES = bufferConstants.MAX_STRING_LENGTH;

let httpsModule: Promise<typeof import('node:https')> | undefined;

/** One request under way: its timers, and how it ends. */
class Attempt {
  readonly #timers = new Set<NodeJS.Timeout>();
  #settled = false;
  request!: http.ClientRequest;

  constructor(private readonly reject: (err: Error) => void) {}

  get settled(): boolean {
    return this.#settled;
  }

  startTimer(event: string, ms: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.fail(timeoutError(event, ms)), ms);
    this.#timers.add(timer);
    return timer;
  }

  stopTimer(timer: NodeJS.Timeout | undefined): void {
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#timers.delete(timer);
  }

  /** No more failures: stop every timer (the caller resolves). */
  settle(): void {
    this.#settled = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  readonly fail = (err: Error): void => {
    if (this.#settled) return;
    this.settle();
    this.request.destroy();
    this.reject(err);
  };
}

/**
 * Send `spec` and call `onResponse` with the answer's head. The connect timer runs until the socket is
 * connected, the response timer from the last byte sent to the head; `extraTimer` (the total limit of
 * a JSON call) from the start.
 */
async function open(
  spec: NodeSpec & { timeouts: { connect: number; response: number } },
  attempt: Attempt,
  onResponse: (response: IncomingMessage) => void,
  extraTimer?: { event: string; ms: number },
): Promise<void> {
  const https_ = spec.url.protocol === 'https:';
  const transport: Pick<typeof http, 'request'> = https_ ? await (httpsModule ??= import('node:https')) : http;
  const body = spec.json === undefined ? undefined : Buffer.from(JSON.stringify(spec.json), 'utf8');
  const headers: Record<string, string> = { ...spec.headers };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(body.length);
  }
  const request = transport.request(spec.url, {
    method: spec.method,
    headers,
    agent: https_ ? spec.agents.https : spec.agents.http,
    ...(spec.signal === undefined ? {} : { signal: spec.signal }),
  });
  attempt.request = request;
  if (extraTimer) attempt.startTimer(extraTimer.event, extraTimer.ms);
  const connecting = attempt.startTimer('connect', spec.timeouts.connect);
  let waiting: NodeJS.Timeout | undefined;
  request.on('socket', (socket) => {
    // A kept-alive socket is connected already; a new one is once its TLS handshake (if any) is done.
    const connected = https_ ? 'secureConnect' : 'connect';
    if (socket.connecting) socket.once(connected, () => attempt.stopTimer(connecting));
    else attempt.stopTimer(connecting);
  });
  request.on('finish', () => {
    if (!attempt.settled) waiting = attempt.startTimer('response', spec.timeouts.response);
  });
  request.on('error', attempt.fail);
  request.on('response', (response) => {
    attempt.stopTimer(waiting);
    onResponse(response);
  });
  request.end(body);
}

/** One JSON attempt: the answer read whole, as text. */
export function nodeRequest(spec: NodeRequestSpec): Promise<NodeResponse> {
  return new Promise((resolve, reject) => {
    const attempt = new Attempt(reject);
    const onResponse = (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_ANSWER_BYTES) {
          chunks.push(chunk);
          return;
        }
        chunks.length = 0;
        const detail = `an answer larger than ${Math.floor(MAX_ANSWER_BYTES / 2 ** 20)} MiB`;
        attempt.fail(new ClientError({ kind: 'protocol', method: spec.method, path: spec.url.pathname, status: response.statusCode, detail }));
      });
      response.on('error', attempt.fail);
      response.on('aborted', () => attempt.fail(closedMidAnswer()));
      response.on('end', () => {
        if (attempt.settled) return;
        attempt.settle();
        resolve({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(chunks).toString('utf8') });
      });
    };
    open(spec, attempt, onResponse, { event: 'request', ms: spec.timeouts.request }).catch(reject);
  });
}

/**
 * The answer's head, and its body as node's stream, for the caller to read. Once the head is in, the
 * body fails (is destroyed with a `socket` timeout error) when no byte arrives for `timeouts.idle`.
 */
export function nodeStream(spec: NodeStreamSpec): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const attempt = new Attempt(reject);
    const onResponse = (response: IncomingMessage) => {
      attempt.settle();
      const { idle } = spec.timeouts;
      const socket = response.socket;
      const onIdle = () => response.destroy(timeoutError('socket', idle));
      socket.setTimeout(idle);
      socket.on('timeout', onIdle);
      response.on('aborted', () => response.destroy(closedMidAnswer()));
      // A kept-alive socket goes back to the pool: neither its idle timer nor our listener may follow it.
      response.once('close', () => {
        socket.setTimeout(0);
        socket.off('timeout', onIdle);
      });
      resolve(response);
    };
    open(spec, attempt, onResponse).catch(reject);
  });
}
