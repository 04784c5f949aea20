/**
 * A small HTTP client for the campaign's own calls to the server (setup, load, final checks). Every
 * call has a timeout; a network error rejects (the server may be dead on purpose).
 */

export interface Reply<T = any> {
  status: number;
  text: string;
  body: T;
  contentType: string;
}

export interface CallOptions {
  token?: string;
  nodeId?: number | string;
  json?: unknown;
  body?: string | Buffer | Uint8Array;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export async function call<T = any>(baseUrl: string, method: string, path: string, opts: CallOptions = {}): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.nodeId !== undefined) headers['node-id'] = String(opts.nodeId);
  let body: string | Uint8Array<ArrayBuffer> | undefined = opts.body === undefined || typeof opts.body === 'string' ? opts.body : new Uint8Array(opts.body);
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body, signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, text, body: parsed as T, contentType: res.headers.get('content-type') ?? '' };
}

export interface JobJson {
  pk: number;
  template: { pk: number; name: string; version: number };
  start_time: string | null;
  end_time: string | null;
  error_reason: string | null;
  node: number | null;
  outputs: { pk: number; name: string; type: string }[];
  is_cancelled: boolean;
  description: string;
}

export interface NodeJson {
  pk: number;
  ip: string;
  index: number;
  last_seen: string | null;
  current_job: number | null;
}

/** The admin's (or a user's) view of one server, logging in again when the token expires. */
export class ServerApi {
  url: string;
  readonly username: string;
  readonly password: string;
  #token: string | undefined;

  constructor(url: string, username: string, password: string) {
    this.url = url;
    this.username = username;
    this.password = password;
  }

  async token(): Promise<string> {
    if (this.#token === undefined) {
      const res = await call(this.url, 'POST', '/v1/auth/obtain', { json: { username: this.username, password: this.password } });
      if (res.status !== 200) throw new Error(`login as ${this.username}: ${res.status} ${res.text}`);
      this.#token = (res.body as { access: string }).access;
    }
    return this.#token;
  }

  /** A call as this user; a 401 logs in again once. */
  async call<T = any>(method: string, path: string, opts: Omit<CallOptions, 'token'> = {}): Promise<Reply<T>> {
    let res = await call<T>(this.url, method, path, { ...opts, token: await this.token() });
    if (res.status === 401) {
      this.#token = undefined;
      res = await call<T>(this.url, method, path, { ...opts, token: await this.token() });
    }
    return res;
  }

  /** A call that must answer `expect` (default 200); returns the body. */
  async ok<T = any>(method: string, path: string, opts: Omit<CallOptions, 'token'> = {}, expect: number[] = [200]): Promise<T> {
    const res = await this.call<T>(method, path, opts);
    if (!expect.includes(res.status)) throw new Error(`${method} ${path} → ${res.status} ${res.text.slice(0, 500)}`);
    return res.body;
  }

  async importTemplate(spec: Record<string, unknown>): Promise<number> {
    return (await this.ok<{ pk: number }>('POST', '/v1/job-templates/import', { json: spec }, [200, 201])).pk;
  }

  async createJob(templatePk: number, parameters: Record<string, { value: unknown; type: string }> = {}, description = ''): Promise<number> {
    const json = { input_values: {}, parameter_values: parameters, description };
    return (await this.ok<{ pk: number }>('POST', `/v1/job-templates/${templatePk}/create-job`, { json }, [200, 201])).pk;
  }

  async job(pk: number): Promise<JobJson> {
    return this.ok<JobJson>('GET', `/v1/jobs/${pk}`);
  }

  /** Every job (optionally of one template), ordered by pk. */
  async jobs(templatePk?: number): Promise<JobJson[]> {
    const expressions = templatePk === undefined ? [] : [{ type: 'exact', field: 'template', value: templatePk }];
    return this.ok<JobJson[]>('POST', '/v1/jobs/list', { json: { expressions, order_by: [{ field: 'pk', ascending: true }] } });
  }

  async nodes(): Promise<NodeJson[]> {
    return this.ok<NodeJson[]>('POST', '/v1/nodes/list', { json: {} });
  }

  async createUser(username: string, password: string, isStaff = false): Promise<number> {
    return (await this.ok<{ pk: number }>('POST', '/v1/users/create', { json: { username, password, is_staff: isStaff } }, [200, 201])).pk;
  }

  async download(jobPk: number, name: string, type = 'BLOB'): Promise<Buffer> {
    const res = await fetch(`${this.url}/v1/jobs/${jobPk}/outputs/${encodeURIComponent(name)}/${encodeURIComponent(type)}`, {
      headers: { authorization: `Bearer ${await this.token()}` },
      signal: AbortSignal.timeout(30_000),
    });
    if (res.status !== 200) throw new Error(`download ${name} of job ${jobPk}: ${res.status} ${await res.text()}`);
    return Buffer.from(await res.arrayBuffer());
  }
}
