/**
 * A tiny real HTTP peer (node:http on port 0) for the behaviour the embedded server never shows on
 * purpose: 503s, stalls, dropped sockets, refused refreshes. It logs every request it receives and
 * answers login with unsigned JWT-shaped tokens (the client never verifies signatures).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOnLoopback } from '../helpers/loopback.js';

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export type PeerHandler = (req: SeenRequest, res: ServerResponse, raw: IncomingMessage) => void | Promise<void>;

export interface Peer {
  url: string;
  /** The node:http server, e.g. to handle `upgrade` for a web-socket peer. */
  server: Server;
  seen: SeenRequest[];
  /** Requests other than the auth routes. */
  calls(): SeenRequest[];
  close(): Promise<void>;
}

/** A JWT-shaped token with `exp`/`iat` (seconds) and no valid signature. */
export function fakeJwt(lifeSeconds: number, type: 'access' | 'refresh' = 'access', tag = Math.random().toString(36).slice(2)): string {
  const now = Math.floor(Date.now() / 1000);
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ jtt: type, upk: 1, iat: now, exp: now + lifeSeconds, jti: tag })}.c2ln`;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Start a peer. `handler` answers everything except `/v1/auth/obtain` and `/v1/auth/refresh`, which
 * answer 300-s tokens unless `auth` overrides them.
 */
export async function startPeer(handler: PeerHandler, auth: { obtain?: PeerHandler; refresh?: PeerHandler } = {}, port = 0): Promise<Peer> {
  const seen: SeenRequest[] = [];
  const server = createServer((raw, res) => {
    const chunks: Buffer[] = [];
    raw.on('data', (c: Buffer) => chunks.push(c));
    raw.on('end', () => {
      const req: SeenRequest = { method: raw.method ?? '', path: raw.url ?? '', headers: raw.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(req);
      const route = req.path.split('?')[0];
      let h: PeerHandler = handler;
      if (route === '/v1/auth/obtain') h = auth.obtain ?? ((_q, r) => sendJson(r, 200, { access: fakeJwt(300), refresh: fakeJwt(28800, 'refresh') }));
      else if (route === '/v1/auth/refresh') h = auth.refresh ?? ((_q, r) => sendJson(r, 200, { access: fakeJwt(300) }));
      void Promise.resolve(h(req, res, raw)).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { detail: String(err) });
      });
    });
  });
  const { url, close } = await listenOnLoopback(server, port);
  return {
    url,
    server,
    seen,
    calls: () => seen.filter((r) => !r.path.startsWith('/v1/auth/')),
    close,
  };
}
