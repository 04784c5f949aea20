/**
 * An HTTP proxy on loopback in front of a test server, for what only a proxy (or a network) does to
 * requests: answer some itself (a 503, a 429, an HTML page), or pass one on and lose its answer.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOnLoopback } from './loopback.js';

export interface ProxyRules {
  /** Answer `req` here instead of passing it on: return true once `res` is answered. */
  answer?(req: IncomingMessage, res: ServerResponse): boolean;
  /** The server's answer to a passed-on `req`: return true once `res` is dealt with (e.g. cut). */
  answered?(req: IncomingMessage, upstream: IncomingMessage, res: ServerResponse): boolean;
}

/** Start a proxy to `target` (a base URL) following `rules`; answers its URL. Closed with the test's loopback servers. */
export async function httpProxy(target: string, rules: ProxyRules = {}): Promise<string> {
  const server = createServer((req, res) => {
    if (rules.answer?.(req, res)) {
      req.resume();
      return;
    }
    const forward = request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (upstream) => {
      if (rules.answered?.(req, upstream, res)) return;
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  return (await listenOnLoopback(server)).url;
}

/** Answer `res` with `status` and a JSON `{detail}` body (plus `headers`). Returns true, for {@link ProxyRules.answer}. */
export function answerJson(res: ServerResponse, status: number, detail: string, headers: Record<string, string> = {}): true {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ detail }));
  return true;
}
