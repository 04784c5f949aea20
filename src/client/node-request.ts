/**
 * One JSON attempt over node's own `http`/`https`: the engine of short-lived commands
 * (`jsonEngine: 'node-http'`). Loading got costs a one-shot CLI command more than the rest of its work
 * (docs/BENCHMARKS.md, "Queue at depth"); node's modules are already in the binary. It does only
 * what a JSON call of this client needs — a body, the answer read as text, the connect, response and
 * total timeouts, the abort signal — and leaves the rest to the layers above, as with got: retries
 * (`transport.ts`), error mapping (`errors.ts`), which address (`endpoints.ts`). No redirects are
 * followed (a 3xx is an answer like any other) and nothing is compressed.
 *
 * Failures are thrown shaped like got's (`name`, `code`, `event`), so {@link errorFromNetwork} maps
 * both engines' errors the same way.
 */
import http from 'node:http';
import type https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';

export interface NodeRequestSpec {
  url: URL;
  method: string;
  headers: Record<string, string>;
  /** Sent as `application/json`. */
  json?: unknown;
  /** https's is needed (and node's https loaded) only for an https URL. */
  agents: { http: http.Agent; https?: https.Agent };
  /** connect: until the socket is connected (TLS included); response: from the request sent to the headers; request: in all. */
  timeouts: { connect: number; response: number; request: number };
  signal?: AbortSignal | undefined;
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

let httpsModule: Promise<typeof import('node:https')> | undefined;

export async function nodeRequest(spec: NodeRequestSpec): Promise<NodeResponse> {
  const https_ = spec.url.protocol === 'https:';
  const transport: Pick<typeof http, 'request'> = https_ ? await (httpsModule ??= import('node:https')) : http;
  return new Promise((resolve, reject) => {
    const body = spec.json === undefined ? undefined : Buffer.from(JSON.stringify(spec.json), 'utf8');
    const headers: Record<string, string> = { ...spec.headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(body.length);
    }
    const timers = new Set<NodeJS.Timeout>();
    const startTimer = (event: string, ms: number): NodeJS.Timeout => {
      const timer = setTimeout(() => fail(timeoutError(event, ms)), ms);
      timers.add(timer);
      return timer;
    };
    const stopTimer = (timer: NodeJS.Timeout | undefined) => {
      if (timer === undefined) return;
      clearTimeout(timer);
      timers.delete(timer);
    };
    let settled = false;
    const settle = () => {
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    };
    const fail = (err: Error) => {
      if (settled) return;
      settle();
      request.destroy();
      reject(err);
    };

    const request = transport.request(spec.url, {
      method: spec.method,
      headers,
      agent: https_ ? spec.agents.https : spec.agents.http,
      ...(spec.signal === undefined ? {} : { signal: spec.signal }),
    });
    startTimer('request', spec.timeouts.request);
    const connecting = startTimer('connect', spec.timeouts.connect);
    let waiting: NodeJS.Timeout | undefined;
    request.on('socket', (socket) => {
      // A kept-alive socket is connected already; a new one is once its TLS handshake (if any) is done.
      const connected = https_ ? 'secureConnect' : 'connect';
      if (socket.connecting) socket.once(connected, () => stopTimer(connecting));
      else stopTimer(connecting);
    });
    request.on('finish', () => {
      if (!settled) waiting = startTimer('response', spec.timeouts.response);
    });
    request.on('error', fail);
    request.on('response', (response) => {
      stopTimer(waiting);
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', fail);
      response.on('aborted', () => fail(Object.assign(new Error('the server closed the connection mid-answer'), { code: 'ECONNRESET' })));
      response.on('end', () => {
        if (settled) return;
        settle();
        resolve({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    request.end(body);
  });
}
