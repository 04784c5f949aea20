/**
 * The dashboard's connection to the server: the user's JWT (obtained with their password, kept in
 * sessionStorage so a reload stays logged in but a closed tab does not), refreshed on a 401 as the
 * UFDL clients do, and web-sockets that offer the current access token as a subprotocol.
 */

const SESSION_KEY = 'ufdl-dashboard-session';

/** A web-socket to open: its URL and the subprotocols offered with it. */
export interface SocketTarget {
  url: string;
  protocols: string[];
}

export interface Session {
  username: string;
  access: string;
  refresh: string;
  isAdmin: boolean;
  userPk: number;
}

export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, detail: string, body: unknown) {
    super(detail);
    this.status = status;
    this.body = body;
  }
}

type Listener = (session: Session | null) => void;

/** Seconds left before a JWT expires (by its `exp`; the server checks the signature). */
function secondsLeft(token: string): number {
  try {
    const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: number };
    return (payload.exp ?? 0) - Date.now() / 1000;
  } catch {
    return 0;
  }
}

async function parse(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function detailOf(body: unknown, status: number): string {
  if (body && typeof body === 'object' && typeof (body as { detail?: unknown }).detail === 'string') return (body as { detail: string }).detail;
  return `the server answered ${status}`;
}

class Api {
  #session: Session | null = null;
  #listeners = new Set<Listener>();
  #refreshing: Promise<void> | undefined;

  constructor() {
    try {
      const stored = sessionStorage.getItem(SESSION_KEY);
      if (stored) this.#session = JSON.parse(stored) as Session;
    } catch {
      this.#session = null;
    }
  }

  get session(): Session | null {
    return this.#session;
  }

  onSession(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async login(username: string, password: string): Promise<void> {
    const response = await fetch('/v1/auth/obtain', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    const body = await parse(response);
    if (!response.ok) throw new ApiError(response.status, detailOf(body, response.status), body);
    const tokens = body as { access: string; refresh: string };
    const users = await fetch(`/v1/users/${encodeURIComponent(username)}`, { headers: { authorization: `Bearer ${tokens.access}` } });
    const user = ((await parse(users)) as { pk: number; is_staff: boolean }[] | undefined)?.[0];
    this.#set({ username, access: tokens.access, refresh: tokens.refresh, isAdmin: user?.is_staff === true, userPk: user?.pk ?? 0 });
  }

  logout(): void {
    this.#set(null);
  }

  /** A JSON call with the user's token; a 401 refreshes the token once and tries again. */
  async call<T>(method: string, path: string, options: { json?: unknown; nodeId?: number } = {}): Promise<T> {
    const send = async () => {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (this.#session) headers.authorization = `Bearer ${this.#session.access}`;
      if (options.json !== undefined) headers['content-type'] = 'application/json';
      if (options.nodeId !== undefined) headers['node-id'] = String(options.nodeId);
      return fetch(path, { method, headers, ...(options.json === undefined ? {} : { body: JSON.stringify(options.json) }) });
    };
    let response = await send();
    if (response.status === 401 && this.#session) {
      await this.#refresh();
      response = await send();
    }
    const body = await parse(response);
    if (!response.ok) throw new ApiError(response.status, detailOf(body, response.status), body);
    return body as T;
  }

  /** A fresh access token (refreshed when it expires within 30 s), for web-socket URLs. */
  async token(): Promise<string> {
    if (!this.#session) throw new ApiError(401, 'not logged in', undefined);
    if (secondsLeft(this.#session.access) < 30) await this.#refresh();
    return this.#session!.access;
  }

  /**
   * `ws(s)://<this host><path>?…`, offering the subprotocols `ufdl` and `bearer.<access token>` (the
   * server answers `ufdl`). Not `?token=`: a URL ends up in the access log of a reverse proxy in
   * front of the server, and in the server's log of a request that failed.
   */
  async socketTarget(path: string, query: Record<string, string | number> = {}): Promise<SocketTarget> {
    const url = new URL(path, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
    return { url: url.toString(), protocols: ['ufdl', `bearer.${await this.token()}`] };
  }

  async #refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      const session = this.#session;
      if (!session) return;
      const response = await fetch('/v1/auth/refresh', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh: session.refresh }),
      });
      if (response.status >= 500) {
        // Nothing said of the session (a proxy's 502 while the server restarts, a 503 while its
        // database is out of reach): keep it; the caller's next call or reconnect tries again.
        const body = await parse(response);
        throw new ApiError(response.status, detailOf(body, response.status), body);
      }
      if (!response.ok) {
        // The refresh token has expired too, or was revoked: log in again.
        this.#set(null);
        throw new ApiError(401, 'your session has expired; log in again', undefined);
      }
      const { access } = (await response.json()) as { access: string };
      this.#set({ ...session, access });
    })().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  #set(session: Session | null): void {
    this.#session = session;
    if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    else sessionStorage.removeItem(SESSION_KEY);
    for (const listener of this.#listeners) listener(session);
  }
}

export const api = new Api();

/**
 * A web-socket that reconnects with back-off until closed. `target()` is asked anew before each
 * attempt (a fresh token, the offset reached so far).
 */
export function reconnectingSocket(
  target: () => Promise<SocketTarget>,
  handlers: { message(event: MessageEvent): void; open?(): void; close?(event: CloseEvent): void },
  binary = false,
): { close(): void } {
  let socket: WebSocket | undefined;
  let closed = false;
  let failures = 0;
  let timer: number | undefined;
  const connect = async () => {
    if (closed) return;
    let next: SocketTarget;
    try {
      next = await target();
    } catch {
      schedule();
      return;
    }
    if (closed) return;
    socket = new WebSocket(next.url, next.protocols);
    if (binary) socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      failures = 0;
      handlers.open?.();
    };
    socket.onmessage = (event) => handlers.message(event);
    socket.onclose = (event) => {
      handlers.close?.(event);
      // 1000: the server ended the stream on purpose (the job ended); 1008: it refused.
      if (event.code !== 1000 && event.code !== 1008) schedule();
    };
  };
  const schedule = () => {
    if (closed) return;
    failures++;
    timer = window.setTimeout(() => void connect(), Math.min(10_000, 300 * 2 ** failures));
  };
  void connect();
  return {
    close() {
      closed = true;
      window.clearTimeout(timer);
      socket?.close();
    },
  };
}
