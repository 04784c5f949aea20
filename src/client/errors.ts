/**
 * Every failure of a client call is a {@link ClientError} with a `kind` the agent and CLI branch on.
 * The reference server sends no error codes, only `{"detail": …}` and a status,
 * so the kind is derived from the status, the operation and, where one status means several things
 * (400, 406), the detail text of the reference (and of the embedded server, which words them alike).
 */

export type ClientErrorKind =
  /** 401, or login refused: credentials are wrong. The agent reports "not ready"; it does not restart. */
  | 'auth'
  /** 403: authenticated, but not allowed (wrong node, not an admin, another user's node). */
  | 'forbidden'
  /** 404: no such route or object. */
  | 'not-found'
  /** 400 `Bad Node-Id header …`: the node pk is unknown to the server; register again. */
  | 'bad-node-id'
  /** 406 on acquire: another node holds the job. Move on. */
  | 'taken'
  /** 406 on start: this node still has a `current_job`. Reconcile. */
  | 'node-busy'
  /** 406: illegal phase transition (or output on a finished job). Re-read the job. */
  | 'phase'
  /** 417: an output was sent for a job that has not started. */
  | 'not-started'
  /** 400 on upload: the job already has an output with this name and type (ours only if its bytes are). */
  | 'duplicate-output'
  /** 413: larger than the server accepts. */
  | 'too-large'
  /** Any other 4xx: the request is wrong; retrying will not help (408 and 429, from a proxy, are retried). */
  | 'bad-request'
  /** 5xx. 502/503/504 are retried for idempotent calls; a 500 is a server bug. */
  | 'server'
  /** A 2xx whose body is not what the protocol says (e.g. HTML from a proxy). */
  | 'protocol'
  /** No response: connection refused or reset, DNS failure. */
  | 'network'
  /** A connect, response, total or idle timeout. */
  | 'timeout'
  /** The call was aborted by its signal or by `client.close()`. */
  | 'aborted';

/** The operation a request performs, where it changes the meaning of a status. */
export type Operation = 'acquire' | 'start' | 'upload' | 'login' | 'other';

export interface ClientErrorInit {
  kind: ClientErrorKind;
  method: string;
  /** The request path, without host or query string (never contains a token). */
  path: string;
  detail: string;
  status?: number | undefined;
  /** The parsed JSON error body, when there was one. */
  body?: unknown;
  /** The network error code (`ECONNREFUSED`, `ETIMEDOUT`…), when there was no response. */
  code?: string | undefined;
  /** `Retry-After` of a 503, in ms. */
  retryAfterMs?: number | undefined;
  cause?: unknown;
}

export class ClientError extends Error {
  readonly kind: ClientErrorKind;
  readonly status: number | undefined;
  readonly detail: string;
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  readonly code: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(init: ClientErrorInit) {
    const where = `${init.method} ${init.path}`;
    const what = init.status === undefined ? `${init.kind}${init.code ? ` (${init.code})` : ''}` : `${init.status}`;
    super(`${where}: ${what}: ${init.detail}`, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'ClientError';
    this.kind = init.kind;
    this.status = init.status;
    this.detail = init.detail;
    this.method = init.method;
    this.path = init.path;
    this.body = init.body;
    this.code = init.code;
    this.retryAfterMs = init.retryAfterMs;
  }

  /**
   * True when the request may never have reached the server or its effect is unknown: no response,
   * a timeout, or a 5xx. After such a failure of a non-idempotent call, re-read the server's state.
   */
  get ambiguous(): boolean {
    return this.kind === 'network' || this.kind === 'timeout' || this.kind === 'server';
  }

  /**
   * True when an idempotent call may be retried as is: no response, a timeout, 408 (a proxy or the
   * server gave up waiting for the request: it was not processed), 429, or 502/503/504.
   */
  get transient(): boolean {
    if (this.kind === 'network' || this.kind === 'timeout') return true;
    return this.status === 408 || this.status === 429 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

export function isClientError(err: unknown, kind?: ClientErrorKind): err is ClientError {
  return err instanceof ClientError && (kind === undefined || err.kind === kind);
}

/** The `detail` of an error body: `{"detail": …}`, else DRF's `{"field": ["msg"]}`, else the text. */
export function detailOf(body: unknown, text: string): string {
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const record = body as Record<string, unknown>;
    if (typeof record.detail === 'string') return record.detail;
    const parts = Object.entries(record).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(' ') : JSON.stringify(v)}`);
    if (parts.length > 0) return parts.join('; ');
  }
  const trimmed = text.trim();
  if (trimmed.startsWith('<')) return 'non-JSON (HTML) error page';
  return trimmed.length > 300 ? `${trimmed.slice(0, 300)}…` : trimmed || '(empty body)';
}

export function classifyStatus(status: number, detail: string, op: Operation): ClientErrorKind {
  if (status === 401) return 'auth';
  if (op === 'login' && status === 400) return 'auth';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 413) return 'too-large';
  if (status === 417) return 'not-started';
  if (status === 400) {
    if (/^Bad Node-Id header/i.test(detail)) return 'bad-node-id';
    if (op === 'upload' && /already has an? (?:active )?output/i.test(detail)) return 'duplicate-output';
    return 'bad-request';
  }
  if (status === 406) {
    if (/already (?:been )?acquired/i.test(detail)) return 'taken';
    if (/another (?:job )?already in progress|already working/i.test(detail)) return 'node-busy';
    if (op === 'acquire' && !/illegal phase/i.test(detail)) return 'taken';
    return 'phase';
  }
  if (status >= 500) return 'server';
  return 'bad-request';
}

/** `Retry-After` in seconds or as an HTTP date, in ms; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return undefined;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim()) * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function errorFromResponse(args: {
  method: string;
  path: string;
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
  op?: Operation;
}): ClientError {
  let body: unknown;
  try {
    body = args.text === '' ? undefined : JSON.parse(args.text);
  } catch {
    body = undefined;
  }
  const detail = detailOf(body, args.text);
  return new ClientError({
    kind: classifyStatus(args.status, detail, args.op ?? 'other'),
    method: args.method,
    path: args.path,
    status: args.status,
    detail,
    body,
    retryAfterMs: parseRetryAfter(args.headers['retry-after']),
  });
}

/**
 * A failure without a response. The original error is not kept as `cause`: got's errors carry the
 * request options, headers included, and a logged `cause` would leak the bearer token.
 */
export function errorFromNetwork(method: string, path: string, err: unknown): ClientError {
  if (err instanceof ClientError) return err;
  const e = err as { name?: string; code?: string; message?: string; event?: string };
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (e.name === 'AbortError' || code === 'ERR_ABORTED' || code === 'ABORT_ERR') {
    return new ClientError({ kind: 'aborted', method, path, detail: 'aborted', code });
  }
  if (e.name === 'TimeoutError' || code === 'ETIMEDOUT') {
    const phase = e.event ? `${e.event} timeout` : 'timeout';
    return new ClientError({ kind: 'timeout', method, path, detail: phase, code: code ?? 'ETIMEDOUT' });
  }
  const message = stripUrls(e.message ?? String(err));
  return new ClientError({ kind: 'network', method, path, detail: message, code });
}

/** Messages of got errors may end with the request URL; keep it out of logs (it may carry `?token=`). */
function stripUrls(message: string): string {
  return message.replace(/\s*(?:wss?|https?):\/\/\S+/g, '').trim() || 'network error';
}
