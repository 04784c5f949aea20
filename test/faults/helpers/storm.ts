/**
 * The bad-input storm: fast-check arbitraries for random and malformed
 * requests at every route of the server, a sender (node:http, so any header can be sent, or a raw
 * socket for malformed HTTP), and the check every answer must pass:
 *
 * - never a 5xx (a 503 while the server closes does not happen here: it is never closed);
 * - never HTML (content type or body);
 * - every 4xx is JSON with a string `detail` (docs/COMPATIBILITY.md), except answers of Node's HTTP parser to
 *   broken HTTP (a bare 400/431 with no body);
 * - an answer within the timeout, unless the request asked to wait (`X-UFDL-Wait`).
 *
 * The storm runs beside real agents working a real queue, so it must not touch their objects on
 * purpose: every pk it puts in a path, a `Node-Id` header or a pk field of a body is one of the
 * storm's own objects, or no object at all (≥ 10⁶, ≤ 0, not a number) — under every reading the
 * server could make of it (`parseInt`, `Number`, after percent-decoding). It never names the `admin`
 * user (the agents log in as admin) and acts as its own staff user and its own plain user.
 */
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { connect } from 'node:net';
import fc from 'fast-check';
import { ROUTES } from '../../helpers/routes.js';

export type PkKind = 'job' | 'template' | 'node' | 'output' | 'hw';

export interface StormWorld {
  port: number;
  /** Tokens: the storm's staff user, its plain user. */
  staffToken: string;
  userToken: string;
  own: Record<PkKind, number[]>;
  usernames: string[];
}

export interface StormRequest {
  method: string;
  /** Route template, for grouping findings. */
  route: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Sent as raw bytes on a socket instead (malformed HTTP). */
  raw?: Buffer;
}

export interface StormAnswer {
  status: number | null;
  contentType: string;
  body: string;
  timedOut: boolean;
  /** The client refused to send it (invalid header etc.): not the server's business. */
  unsendable?: string;
}

// ── routes ────────────────────────────────────────────────────────────────────────────────────

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'get'];

// ── safety: never name another test's object ──────────────────────────────────────────────────

const SAFE_MIN = 1_000_000;

function decodings(s: string): string[] {
  const out = [s];
  let current = s;
  for (let i = 0; i < 3; i++) {
    try {
      const next = decodeURIComponent(current);
      if (next === current) break;
      out.push(next);
      current = next;
    } catch {
      break;
    }
  }
  return out;
}

/** Every integer the server could read out of `s` (as it is, trimmed, percent-decoded). */
function readings(s: string): number[] {
  const numbers: number[] = [];
  for (const t of decodings(s)) {
    for (const u of [t, t.trim()]) numbers.push(Number(u), parseInt(u, 10), parseFloat(u));
  }
  return numbers.filter((n) => Number.isFinite(n)).map((n) => Math.trunc(n));
}

/** Whether `s` could name an object that is not the storm's own (of that kind). */
export function couldNameForeign(s: string, own: readonly number[]): boolean {
  return readings(s).some((n) => n >= 1 && n < SAFE_MIN && !own.includes(n));
}

export function couldNameAdmin(s: string): boolean {
  return decodings(s).some((t) => t.trim().toLowerCase().includes('admin') && !t.includes('storm'));
}

// ── arbitraries ───────────────────────────────────────────────────────────────────────────────

const TRICKS = [
  '..',
  '.',
  '%2e%2e',
  '..%2f..%2f..%2fescape',
  '%2e%2e%2f%2e%2e%2fescape.txt',
  '..%5c..%5cescape',
  '%00',
  'a%00b',
  '%',
  '%zz',
  '%ff%fe',
  '~',
  'con',
  'NUL',
  '%2F',
  '%0d%0aX-Injected:%201',
  '%E2%80%AE',
  '😀',
  encodeURIComponent('../../../../escape'),
  encodeURIComponent('/etc/passwd'),
];

const huge = (n: number) => 'x'.repeat(n);

function segment(kind: Placeholder, w: StormWorld): fc.Arbitrary<string> {
  const text = fc.string({ unit: 'grapheme', maxLength: 40 }).map(encodeURIComponent);
  const pieces: fc.Arbitrary<string>[] = [
    fc.oneof({ weight: 6, arbitrary: text }, { weight: 6, arbitrary: fc.constantFrom(...TRICKS) }, { weight: 1, arbitrary: fc.constant(huge(5000)) }),
  ];
  switch (kind) {
    case 'job':
    case 'template':
    case 'node':
    case 'output':
    case 'hw': {
      const own = w.own[kind];
      const numbers = fc.oneof(
        ...(own.length > 0 ? [fc.constantFrom(...own).map(String)] : []),
        fc.integer({ min: SAFE_MIN, max: 2 ** 31 }).map(String),
        fc.constantFrom('0', '-1', '-0', '99999999999999999999999', '9007199254740993', '1e309', 'NaN', 'Infinity', '0x10', ' ', ''),
      );
      return fc.oneof({ weight: 6, arbitrary: numbers }, ...pieces).filter((s) => !couldNameForeign(s, own));
    }
    case 'name':
      return fc.oneof(fc.constantFrom('log', 'result.txt', 'model.zip', 'a b', 'ünï', '.hidden').map(encodeURIComponent), ...pieces);
    case 'type':
      return fc.oneof(
        fc.constantFrom('BLOB', 'JSON', 'Compressed<JSON, 8>', 'PK<Dataset<Domain<"Image Classification">>>', 'JobOutput<BLOB>', 'Array<str>', 'str', '<<<', '>'),
        fc.string({ maxLength: 30 }),
        ...pieces,
      ).map((t) => (t.includes('%') ? t : encodeURIComponent(t)));
    case 'user':
      return fc.oneof(fc.constantFrom(...w.usernames), ...pieces).filter((s) => !couldNameAdmin(s));
    case 'progress':
      return fc.oneof(
        fc.double({ noNaN: false }).map(String),
        fc.constantFrom('0', '1', '1.0', '0.5', '1e-3', '.5', '-0', '1.0000001', '-0.1', '2', 'NaN', 'Infinity', '0x1', '1e400', '0.' + '9'.repeat(400)),
        ...pieces,
      );
    case 'licence':
      // Licences are read-only: any pk is safe to name.
      return fc.oneof(fc.integer({ min: -1, max: 20 }).map(String), ...pieces);
    case 'compute':
      return fc.oneof(fc.constantFrom('7.5', '8.0', '0', '-1', '1e9', '7.5.1'), ...pieces);
    case 'contract':
      return fc.oneof(fc.constantFrom('Run', 'Train', 'Predict', 'Export', 'run'), ...pieces);
    case 'valuetype':
      return fc.oneof(fc.constantFrom('int', 'str', 'bool', 'float', 'JSON', 'PK<Dataset>', 'Array<int>').map(encodeURIComponent), ...pieces);
  }
}

const PLACEHOLDER = /\{(job|template|node|output|hw|licence|name|type|user|progress|compute|contract|valuetype)\}/g;
type Placeholder = PkKind | 'licence' | 'name' | 'type' | 'user' | 'progress' | 'compute' | 'contract' | 'valuetype';

/** One value for every placeholder (a record, not a chain, so that fast-check shrinks it cleanly). */
function segmentsArb(w: StormWorld): fc.Arbitrary<Record<Placeholder, string>> {
  const kinds: Placeholder[] = ['job', 'template', 'node', 'output', 'hw', 'licence', 'name', 'type', 'user', 'progress', 'compute', 'contract', 'valuetype'];
  return fc.record(Object.fromEntries(kinds.map((k) => [k, segment(k, w)])) as Record<Placeholder, fc.Arbitrary<string>>);
}

function fillPath(template: string, values: Record<Placeholder, string>): string {
  return template.replace(PLACEHOLDER, (_, kind: Placeholder) => values[kind]);
}

/** Random JSON with pk-looking fields made safe. */
function safeJson(w: StormWorld): fc.Arbitrary<unknown> {
  return fc.jsonValue({ maxDepth: 4 }).map((v) => sanitize(v, w));
}

const PK_FIELDS: Record<string, PkKind> = { job: 'job', template: 'template', node: 'node', pk: 'job', id: 'job', parent: 'job', output: 'output', hardware_generation: 'hw' };

function sanitize(v: unknown, w: StormWorld): unknown {
  if (Array.isArray(v)) return v.map((x) => sanitize(x, w));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    // defineProperty: a "__proto__" key stays an own key (and is sent), as JSON.parse made it.
    const put = (k: string, x: unknown) => Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true });
    for (const [k, x] of Object.entries(v)) {
      const kind = Object.hasOwn(PK_FIELDS, k) ? PK_FIELDS[k] : undefined;
      if (kind !== undefined && x !== null && typeof x !== 'object' && couldNameForeign(String(x), w.own[kind])) put(k, SAFE_MIN + 7);
      else if (typeof x === 'string' && couldNameAdmin(x) && (k === 'username' || k === 'user')) put(k, 'storm-nobody');
      else put(k, sanitize(x, w));
    }
    return out;
  }
  return v;
}

/** Well-formed bodies of the routes that take one, to mutate. */
function validBodies(w: StormWorld): Record<string, unknown>[] {
  const job = w.own.job[0] ?? SAFE_MIN;
  const template = w.own.template[0] ?? SAFE_MIN;
  return [
    { username: 'storm-user', password: 'storm-user-password' },
    { refresh: 'x.y.z' },
    { token: 'x.y.z' },
    { username: `storm-${Math.random().toString(36).slice(2, 8)}`, password: 'a-long-password', is_staff: false },
    { password: 'another-long-password' },
    { ip: '10.66.0.9', index: 3, cpu_mem: 1024, gpu_mem: null, driver_version: null, hardware_generation: null },
    { expressions: [{ type: 'exact', field: 'pk', value: job }], order_by: [{ field: 'pk', ascending: true }], include_inactive: true },
    { expressions: [{ type: 'and', sub_expressions: [{ type: 'isnull', field: 'start_time' }, { type: 'compare', field: 'creation_time', operator: '<', value: 'x' }] }] },
    { order_by: [{ field: 'template.name' }, { field: 'no.such.field' }] },
    {
      name: 'storm-template',
      version: 2,
      description: 'storm',
      scope: 'public',
      licence: 'Apache 2.0',
      specific: { job_type: 'Run', executor_class: 'storm.NotAnExecutor', required_packages: '', parameters: { body: { types: ['str'], default: 'x', const: true, help: 'x' } } },
    },
    { input_values: {}, parameter_values: { body: { value: 'x', type: 'str' } }, description: 'storm job' },
    { template, input_values: {}, parameter_values: {}, description: 'storm', creator: 1 },
    { send_notification: 'email' },
    { success: false, error: 'storm', send_notification: 'email' },
    { description: 'renamed by the storm' },
    { job, name: 'storm-out', type: 'BLOB' },
    { step: 1, nested: { a: [1, 2, 3] } },
  ];
}

function mutatedBody(w: StormWorld): fc.Arbitrary<unknown> {
  return fc
    .tuple(fc.constantFrom(...validBodies(w)), fc.nat(), fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('drop', 'retype', 'add', 'proto', 'keep'))
    .map(([body, i, value, how]) => {
      const copy = structuredClone(body) as Record<string, unknown>;
      const keys = Object.keys(copy);
      const key = keys[i % Math.max(1, keys.length)];
      if (how === 'drop' && key) delete copy[key];
      else if (how === 'retype' && key) copy[key] = value;
      else if (how === 'add') copy[`extra_${i % 7}`] = value;
      else if (how === 'proto') {
        const rest = JSON.stringify(copy).slice(1);
        return JSON.parse(`{"__proto__": {"is_staff": true, "admin": true}, "constructor": {"prototype": {"x": 1}}${rest === '}' ? '}' : `, ${rest}`}`) as unknown;
      }
      return copy;
    })
    .map((v) => sanitize(v, w));
}

function bodyArb(w: StormWorld): fc.Arbitrary<{ body?: Buffer; contentType?: string }> {
  const json = (v: unknown) => ({ body: Buffer.from(JSON.stringify(v) ?? 'null'), contentType: 'application/json' });
  return fc.oneof(
    { weight: 4, arbitrary: mutatedBody(w).map(json) },
    { weight: 3, arbitrary: safeJson(w).map(json) },
    { weight: 1, arbitrary: fc.constant({}) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(
          '{',
          '{"a":',
          '{"a":1,}',
          "{'a':1}",
          'nul',
          '[1,2',
          '"\\u12"',
          '\u0000',
          '{"a":"\ud800"}',
          '{"__proto__":{"polluted":true}}',
          '[' .repeat(20_000) + ']'.repeat(20_000),
          '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000),
          '1e999999',
          '-',
        )
        .map((text) => ({ body: Buffer.from(text), contentType: 'application/json' })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=zz', 'multipart/form-data', 'application/json; charset=utf-16', 'application/data', 'application/octet-stream', '', 'application/json, text/html', ';;;'), fc.uint8Array({ maxLength: 300 }))
        .map(([contentType, bytes]) => ({ body: Buffer.from(bytes), contentType })),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        // Over the JSON body limit (1 MiB) and a large upload.
        { body: Buffer.from(JSON.stringify({ a: 'x'.repeat(1_200_000) })), contentType: 'application/json' },
        { body: Buffer.alloc(2 * 1024 * 1024, 7), contentType: 'application/data' },
        { body: Buffer.from('--zz\r\nContent-Disposition: form-data; name="file"; filename="../../escape.txt"\r\n\r\nhello\r\n--zz--\r\n'), contentType: 'multipart/form-data; boundary=zz' },
      ),
    },
  );
}

function authArb(w: StormWorld): fc.Arbitrary<Record<string, string>> {
  const tamper = (t: string) => `${t.slice(0, -4)}${t.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
  const valid = fc.constantFrom<Record<string, string>>({ authorization: `Bearer ${w.staffToken}` }, { authorization: `Bearer ${w.userToken}` });
  const bad = fc.constantFrom<Record<string, string>>(
    {},
    { authorization: 'Bearer' },
    { authorization: 'Bearer ' },
    { authorization: 'Bearer garbage' },
    { authorization: `Bearer ${tamper(w.staffToken)}` },
    { authorization: `Bearer ${w.staffToken.split('.').slice(0, 2).join('.')}.` },
    { authorization: `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"user_id":1,"token_type":"access"}').toString('base64url')}.` },
    { authorization: `Basic ${Buffer.from('admin:wrong').toString('base64')}` },
    { authorization: `JWT ${w.staffToken}` },
    { authorization: `Bearer ${w.staffToken} extra` },
    { authorization: `Bearer ${huge(9000)}` },
  );
  return fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: bad });
}

function nodeIdArb(w: StormWorld): fc.Arbitrary<Record<string, string>> {
  const value = fc
    .oneof(
      fc.constantFrom(...(w.own.node.length > 0 ? w.own.node : [SAFE_MIN])).map(String),
      fc.constantFrom('', ' ', 'abc', '-1', '0', '1.5', '1e3', '99999999999999999999', `${SAFE_MIN + 1}`, 'null', '[1]'),
    )
    .filter((s) => !couldNameForeign(s, w.own.node));
  return fc.option(value, { nil: undefined, freq: 2 }).map((v): Record<string, string> => (v === undefined ? {} : { 'node-id': v }));
}

function extraHeadersArb(): fc.Arbitrary<Record<string, string>> {
  return fc
    .subarray([
      ['x-ufdl-wait', 'abc'],
      ['x-ufdl-wait', '-1'],
      ['x-ufdl-wait', '0.5'],
      ['x-ufdl-wait', '1e999'],
      ['accept', 'text/html'],
      ['accept-encoding', 'gzip, br'],
      ['content-disposition', 'attachment; filename="../../escape.txt"'],
      ['content-disposition', 'attachment; filename*=UTF-8\'\'%2e%2e%2fescape'],
      ['x-forwarded-for', '::1'],
      ['range', 'bytes=5-1'],
      ['range', 'bytes=0-0,-1'],
      ['if-none-match', '*'],
      ['connection', 'upgrade'],
      ['upgrade', 'websocket'],
      ['sec-websocket-version', '13'],
      ['expect', '100-continue'],
    ] as [string, string][], { maxLength: 3 })
    .map((pairs) => Object.fromEntries(pairs));
}

const RAW_REQUESTS = [
  'GARBAGE\r\n\r\n',
  'GET / HTTP/1.1\r\n\r\n',
  'GET /livez HTTP/9.9\r\nHost: x\r\n\r\n',
  'GET /livez\r\n\r\n',
  `GET /${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  `GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(70_000)}\r\n\r\n`,
  'POST /v1/auth/obtain HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{"username":',
  'POST /v1/auth/obtain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
  'POST /v1/auth/obtain HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
  'POST /v1/auth/obtain HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
  'GET /v1/jobs/../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /v1/jobs/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /livez HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n',
  'GET /livez HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
  'GET /livez HTTP/1.1\r\nHost: x\r\nX: \u0000\r\n\r\n',
  'GET /v1/jobs/1000001 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n',
  'GET /v1/jobs/1000001 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
  '\r\n\r\n\r\n',
];

export function requestArb(w: StormWorld): fc.Arbitrary<StormRequest> {
  const routed = fc
    .record({
      route: fc.constantFrom(...ROUTES),
      method: fc.oneof({ weight: 9, arbitrary: fc.constant<string | null>(null) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
      auth: authArb(w),
      nodeId: nodeIdArb(w),
      extra: extraHeadersArb(),
      body: fc.option(bodyArb(w), { nil: undefined, freq: 4 }),
      suffix: fc.constantFrom('', '', '', '/', '?', '?a=1&a=2', '?__proto__[x]=1', `?${huge(3000)}`, '#frag', '//'),
      segments: segmentsArb(w),
    })
    .map(({ route, method, auth, nodeId, extra, body, suffix, segments }): StormRequest => {
      const headers: Record<string, string> = { ...auth, ...nodeId, ...extra };
      const m = method ?? route.method;
      const withBody = body ?? (m === 'POST' || m === 'PUT' || m === 'PATCH' ? { body: Buffer.from('{}'), contentType: 'application/json' } : {});
      if (withBody.contentType !== undefined && withBody.contentType !== '') headers['content-type'] = withBody.contentType;
      return { method: m, route: `${route.method} ${route.path}`, path: fillPath(route.path, segments) + suffix, headers, ...(withBody.body ? { body: withBody.body } : {}) };
    });
  const random = fc
    .tuple(fc.constantFrom(...METHODS), fc.array(segment('name', w), { minLength: 0, maxLength: 5 }), authArb(w))
    .map(([method, segments, auth]): StormRequest => ({ method, route: 'random path', path: `/${segments.join('/')}`, headers: auth }))
    .filter((r) => !couldNameForeign(r.path, []));
  const raw = fc.constantFrom(...RAW_REQUESTS).map((text): StormRequest => ({ method: 'RAW', route: `raw ${JSON.stringify(text.slice(0, 40))}`, path: '', headers: {}, raw: Buffer.from(text) }));
  return fc.oneof({ weight: 16, arbitrary: routed }, { weight: 2, arbitrary: random }, { weight: 1, arbitrary: raw });
}

// ── sending and checking ──────────────────────────────────────────────────────────────────────

export class StormClient {
  readonly #agent: HttpAgent;
  readonly #port: number;
  readonly #timeoutMs: number;

  constructor(port: number, sockets: number, timeoutMs = 15_000) {
    this.#port = port;
    this.#timeoutMs = timeoutMs;
    this.#agent = new HttpAgent({ keepAlive: true, maxSockets: sockets });
  }

  close(): void {
    this.#agent.destroy();
  }

  send(r: StormRequest): Promise<StormAnswer> {
    return r.raw ? this.#sendRaw(r.raw) : this.#sendHttp(r);
  }

  #sendHttp(r: StormRequest): Promise<StormAnswer> {
    return new Promise((resolve) => {
      let req: ReturnType<typeof httpRequest>;
      // Well-framed HTTP here (a body always with its length); broken framing is the raw lane's job.
      const headers = r.body ? { ...r.headers, 'content-length': String(r.body.length) } : r.headers;
      try {
        req = httpRequest({ host: '127.0.0.1', port: this.#port, method: r.method, path: r.path, headers, agent: this.#agent });
      } catch (err) {
        resolve({ status: null, contentType: '', body: '', timedOut: false, unsendable: (err as Error).message });
        return;
      }
      // A request that asks to wait (X-UFDL-Wait, up to 60 s by design) is not worth waiting for.
      const timer = setTimeout(
        () => {
          req.destroy();
          resolve({ status: null, contentType: '', body: '', timedOut: true });
        },
        'x-ufdl-wait' in r.headers ? 3_000 : this.#timeoutMs,
      );
      req.on('upgrade', (res, socket) => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ status: res.statusCode ?? null, contentType: String(res.headers['content-type'] ?? ''), body: '', timedOut: false });
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          // Keep the head of the body only (downloads may be large).
          if (size < 64 * 1024) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? null, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString('utf8'), timedOut: false });
        });
        res.on('error', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? null, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString('utf8'), timedOut: false });
        });
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        // The server closed the connection without an answer (it may, for an oversized body).
        resolve({ status: null, contentType: '', body: `(no answer: ${err.message})`, timedOut: false });
      });
      if (r.body) req.end(r.body);
      else req.end();
    });
  }

  #sendRaw(bytes: Buffer): Promise<StormAnswer> {
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: this.#port });
      const chunks: Buffer[] = [];
      const finish = (timedOut: boolean) => {
        clearTimeout(timer);
        socket.destroy();
        const text = Buffer.concat(chunks).toString('latin1');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
        const head = text.split('\r\n\r\n')[0] ?? '';
        const ct = /\r\ncontent-type:\s*([^\r]*)/i.exec(head)?.[1] ?? '';
        resolve({ status: m ? Number(m[1]) : null, contentType: ct, body: text.slice(head.length + 4), timedOut });
      };
      const timer = setTimeout(() => finish(true), 3_000);
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        // One complete answer is enough to judge (pipelined ones follow; the first one counts).
        if (Buffer.concat(chunks).includes('\r\n\r\n')) setTimeout(() => finish(false), 100);
      });
      socket.on('error', () => finish(false));
      socket.on('close', () => finish(false));
      socket.write(bytes);
    });
  }
}

/** Fastify's answer to what Node's HTTP parser refuses (`clientErrorHandler`): 400, 408, 431. */
const CLIENT_ERROR_BODY = /^\{"error":"[^"]*","message":"[^"]*","statusCode":4\d\d\}$/;

/** A request that may legitimately go unanswered for long: raw bytes (an announced body never sent), or one asking to wait. */
export function mayHang(r: StormRequest): boolean {
  return r.raw !== undefined || 'x-ufdl-wait' in r.headers;
}

/** What is wrong with this answer, or null. */
export function judge(r: StormRequest, a: StormAnswer): string | null {
  if (a.unsendable) return null;
  // No answer in time is not judged here (a timing, not a property): the storm replays such
  // requests once it is over, and only one that again gets no answer is a finding.
  if (a.timedOut) return null;
  if (a.status === null) return null; // closed without an answer (e.g. an oversized or broken request)
  if (a.status >= 500) return `status ${a.status}: ${a.body.slice(0, 300)}`;
  if (/html/i.test(a.contentType) || /^\s*</.test(a.body)) return `HTML answer (status ${a.status}, ${a.contentType}): ${a.body.slice(0, 200)}`;
  // Node's HTTP parser (malformed HTTP: the raw lane) answers before the application; fastify's
  // default body there is JSON without "detail". Not HTML and not 5xx is all that is asked of it.
  if (r.raw || CLIENT_ERROR_BODY.test(a.body)) return null;
  if (a.status >= 400 && r.method !== 'HEAD') {
    let detail: unknown;
    try {
      detail = (JSON.parse(a.body) as { detail?: unknown }).detail;
    } catch {
      return `status ${a.status} without a JSON body (${a.contentType}): ${a.body.slice(0, 200)}`;
    }
    if (typeof detail !== 'string') return `status ${a.status} without a string "detail": ${a.body.slice(0, 200)}`;
  }
  return null;
}

/** The root cause of a problem, for grouping: the status and the first words, without numbers or quoted paths. */
export function signature(problem: string): string {
  return problem
    .replace(/'[^']*'/g, "'…'")
    .replace(/\d+/g, 'N')
    .replace(/(detail|message)":"[^"]{0,40}[^"]*"/g, '$1":"…"')
    .slice(0, 100);
}

/** A short, readable form of a request for the report. */
export function describe(r: StormRequest): string {
  if (r.raw) return `raw ${JSON.stringify(r.raw.toString('latin1').slice(0, 160))}`;
  const headers = Object.entries(r.headers)
    .map(([k, v]) => `${k}: ${v.length > 60 ? `${v.slice(0, 60)}…(${v.length})` : v}`)
    .join('; ');
  const body = r.body ? ` body(${r.body.length}) ${JSON.stringify(r.body.toString('utf8').slice(0, 160))}` : '';
  const path = r.path.length > 200 ? `${r.path.slice(0, 200)}…(${r.path.length})` : r.path;
  return `${r.method} ${path} [${headers}]${body}`;
}
