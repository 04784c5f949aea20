/**
 * A stand-in for the reference UFDL backend (waikato-ufdl/ufdl-backend @ 4698727), in memory on a
 * real node:http server, for the routes a worker node uses. Agent tests run against it to check what
 * happens against the reference, not against our own server. Each rule below is the reference's, read
 * from its code (`ufdl-core-app/src/ufdl/core_app/`: `models/jobs/_Job.py`, `views/jobs/`,
 * `views/mixins/_AddJobOutputViewSet.py`, `views/mixins/_SoftDeleteViewSet.py`, `permissions/`):
 *
 * - no extensions: the capabilities route, `X-UFDL-Wait` and token-authenticated sockets do not
 *   exist; unknown routes answer Django's HTML 404;
 * - reset and abort *soft*-delete a job's outputs; soft-deleted outputs stay in the job's `outputs`,
 *   are still served and found by (name, type), and block an upload of the same name and type (400);
 * - Delete Output (admin only) is a soft delete too; only `DELETE /v1/job-outputs/{pk}/hard` (admin
 *   only) removes the row and frees the name;
 * - add-output is for an admin or the node holding the job; 417 before start, 406 once FINISHED;
 * - progress with a body key `node` or `progress`, or by a node not working the job, is a 500; so is
 *   finish by a node not working it (assertions in the reference);
 * - start needs `send_notification`; finish needs `success` and `send_notification`.
 *
 * Simplification: every API route needs a token (the reference lets node-only actions through
 * without one; our agent always sends one). Tokens are unsigned (the agent never checks signatures).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listenOnLoopback } from './loopback.js';
import { parseTypeString, printType, type TypeArg, type TypeNode } from '../../src/protocol/type-string.js';

export interface RefUser {
  pk: number;
  username: string;
  password: string;
  isStaff: boolean;
}

export interface RefNode {
  pk: number;
  ip: string;
  index: number;
  driver_version: string | null;
  hardware_generation: number | null;
  gpu_mem: number | null;
  cpu_mem: number;
  last_seen: string | null;
  current_job: number | null;
}

export interface RefJob {
  pk: number;
  template: number;
  start_time: string | null;
  end_time: string | null;
  error_reason: string | null;
  input_values: Record<string, unknown>;
  parameter_values: Record<string, unknown>;
  node: number | null;
  description: string;
  creator: number;
  creation_time: string;
  deletion_time: string | null;
}

export interface RefOutput {
  pk: number;
  job: number;
  name: string;
  type: string;
  bytes: Buffer;
  creator: number;
  creation_time: string;
  deletion_time: string | null;
}

export interface ProgressCall {
  job: number;
  value: string;
  status: number;
  body: unknown;
}

export interface ReferenceBackend {
  url: string;
  users: RefUser[];
  nodes: RefNode[];
  jobs: RefJob[];
  /** Every output row ever made, soft-deleted ones included (hard delete removes the row). */
  outputs: RefOutput[];
  /** Every progress call, answered or not. */
  progressCalls: ProgressCall[];
  /** Every request line (`METHOD /path`), in order. */
  requests: string[];
  addUser(username: string, password: string, options?: { admin?: boolean }): RefUser;
  /** A workable template (the JSON the reference returns, without the fields it fills in). */
  addTemplate(spec: { name: string; type: string; executor_class: string; parameters: Record<string, unknown> }): number;
  createJob(template: number, values?: { input_values?: Record<string, unknown>; parameter_values?: Record<string, unknown> }): RefJob;
  job(pk: number): RefJob;
  /** The job's output rows with this name and type (at most one: the reference's unique constraint). */
  output(job: number, name: string, type: string): RefOutput | undefined;
  /** While true, every connection is dropped at once (the server is unreachable). */
  setUnreachable(down: boolean): void;
  close(): Promise<void>;
}

/** The reference's seeded hardware generations (`migrations/hardware/hardware.csv`), pks from 1. */
export const REFERENCE_HARDWARE = [
  ['Fermi', 2.0, 3.0],
  ['Kepler', 3.0, 5.0],
  ['Maxwell', 5.0, 6.0],
  ['Pascal', 6.0, 7.0],
  ['Volta', 7.0, 7.5],
  ['Turing', 7.5, 8.0],
  ['Ampere', 8.0, 9.0],
  ['Hopper', 9.0, 10.0],
].map(([generation, min, max], i) => ({ pk: i + 1, generation, min_compute_capability: min, max_compute_capability: max }));

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string | undefined,
  ) {
    super(detail ?? String(status));
  }
}

/** An error the reference answers with its HTML error page (404 unrouted, 500 assertion). */
const html = (status: number) => new HttpError(status, undefined);
const fail = (status: number, detail: string) => new HttpError(status, detail);
const DENIED = 'You do not have permission to perform this action.';

type Phase = 'CREATED' | 'STARTED' | 'CANCELLED' | 'FINISHED' | 'ERRORED';

function phaseOf(job: RefJob): Phase {
  if (job.start_time === null) return 'CREATED';
  if (job.end_time === null) return job.error_reason === null ? 'STARTED' : 'CANCELLED';
  return job.error_reason === null ? 'FINISHED' : 'ERRORED';
}

function ipt(job: RefJob, transition: string, reason: string): HttpError {
  return fail(406, `Attempted an illegal phase-transition on workable job ${job.pk} in phase LifecyclePhase.${phaseOf(job)}: ${transition}\n${reason}.`);
}

function token(upk: number, type: 'access' | 'refresh'): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ jtt: type, upk, iat: now, exp: now + (type === 'access' ? 300 : 28800), jti: Math.random().toString(36).slice(2) })}.c2ln`;
}

function upkOf(jwt: string | undefined): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(jwt!.split('.')[1]!, 'base64url').toString('utf8')) as { upk?: unknown };
    return typeof payload.upk === 'number' ? payload.upk : undefined;
  } catch {
    return undefined;
  }
}

interface Call {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  user: RefUser | undefined;
  node: RefNode | undefined;
}

export async function startReferenceBackend(): Promise<ReferenceBackend> {
  const users: RefUser[] = [];
  const nodes: RefNode[] = [];
  const templates: Record<string, unknown>[] = [];
  const jobs: RefJob[] = [];
  const outputs: RefOutput[] = [];
  const progressCalls: ProgressCall[] = [];
  const requests: string[] = [];
  let unreachable = false;
  let outputPk = 0;
  const now = () => new Date().toISOString();

  const jobJson = (job: RefJob) => {
    const template = templates[job.template - 1]!;
    return {
      pk: job.pk,
      template: { pk: job.template, name: template.name, version: template.version },
      parent: null,
      start_time: job.start_time,
      end_time: job.end_time,
      error_reason: job.error_reason,
      input_values: job.input_values,
      parameter_values: job.parameter_values,
      node: job.node,
      // Every output row, soft-deleted ones included.
      outputs: outputs.filter((o) => o.job === job.pk).map((o) => ({ pk: o.pk, name: o.name, type: o.type })),
      description: job.description,
      is_cancelled: phaseOf(job) === 'CANCELLED',
      creator: job.creator,
      creation_time: job.creation_time,
      deletion_time: job.deletion_time,
    };
  };
  const outputJson = (o: RefOutput) => ({ pk: o.pk, job: o.job, name: o.name, type: o.type, creator: o.creator, creation_time: o.creation_time, deletion_time: o.deletion_time });
  const softDeleteOutputsOf = (job: RefJob) => {
    for (const o of outputs) if (o.job === job.pk && o.deletion_time === null) o.deletion_time = now();
  };

  const findJob = (pk: string) => jobs.find((j) => j.pk === Number(pk)) ?? fail404();
  const fail404 = (): never => {
    throw fail(404, 'Not found.');
  };
  const needNode = (c: Call): RefNode => {
    if (!c.node) throw fail(403, DENIED);
    return c.node;
  };
  const ownsJob = (c: Call, job: RefJob) => c.node !== undefined && job.node === c.node.pk;
  const workingJob = (c: Call, job: RefJob) => c.node !== undefined && c.node.current_job === job.pk;
  const admin = (c: Call) => c.user?.isStaff === true;
  const json = (c: Call): Record<string, unknown> => {
    try {
      const value = c.body.length === 0 ? {} : (JSON.parse(c.body.toString('utf8')) as unknown);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw html(500);
      return value as Record<string, unknown>;
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw fail(400, 'JSON parse error');
    }
  };

  type Handler = (c: Call, m: RegExpMatchArray) => unknown;
  const routes: [string, RegExp, Handler][] = [
    ['POST', /^\/v1\/hardware\/list\/?$/, () => REFERENCE_HARDWARE],
    ['POST', /^\/v1\/nodes\/list\/?$/, (c) => nodes.filter((n) => matchesNodeFilter(n, json(c)))],
    ['POST', /^\/v1\/nodes\/create\/?$/, (c) => {
      const b = json(c);
      if (nodes.some((n) => n.ip === b.ip && n.index === b.index)) throw fail(400, 'UNIQUE constraint failed: ufdl_core_node.ip, ufdl_core_node.index');
      const node: RefNode = { pk: nodes.length + 1, ip: String(b.ip), index: Number(b.index), driver_version: (b.driver_version as string) ?? null, hardware_generation: (b.hardware_generation as number) ?? null, gpu_mem: (b.gpu_mem as number) ?? null, cpu_mem: Number(b.cpu_mem), last_seen: null, current_job: null };
      nodes.push(node);
      return [201, node];
    }],
    ['GET', /^\/v1\/nodes\/ping\/?$/, (c) => (needNode(c), [200, undefined])],
    ['GET', /^\/v1\/nodes\/(\d+)\/?$/, (_c, m) => nodes.find((n) => n.pk === Number(m[1])) ?? fail404()],
    ['PATCH', /^\/v1\/nodes\/(\d+)\/?$/, (c, m) => {
      const node = nodes.find((n) => n.pk === Number(m[1])) ?? fail404();
      if (!admin(c) && c.node?.pk !== node.pk) throw fail(403, DENIED);
      const { current_job: _ignored, pk: _pk, ...fields } = json(c);
      Object.assign(node, fields);
      return node;
    }],
    // get-by-name, for yourself only (the ts-client learns its own record this way).
    ['GET', /^\/v1\/users\/([^/]+?)\/?$/, (c, m) => {
      if (c.user!.username !== decodeURIComponent(m[1]!)) throw fail(403, DENIED);
      const { password: _secret, isStaff, ...user } = c.user!;
      return [{ ...user, is_staff: isStaff, is_superuser: isStaff, is_active: true }];
    }],
    ['POST', /^\/v1\/job-templates\/list\/?$/, (c) => templates.filter((t) => matches(json(c), (name) => {
      if (name in t) return t[name];
      throw html(500); // Django's FieldError
    }))],
    ['POST', /^\/v1\/job-templates\/(\d+)\/create-job\/?$/, (c, m) => {
      const template = templates[Number(m[1]) - 1] ?? fail404();
      const body = json(c);
      const inputs = (body.input_values ?? {}) as Record<string, { value: unknown; type: string }>;
      for (const [name, allowed] of Object.entries(contractInputs(String(template.type)))) {
        const given = inputs[name];
        if (!given) throw fail(406, `No input value provided for input '${name}'`);
        if (!allowed.includes(printType(parseTypeString(given.type)))) throw fail(406, `Input '${name}' received value of invalid type ${given.type}`);
      }
      if (!('parameter_values' in body)) throw html(500);
      const job = api.createJob(Number(m[1]), { input_values: inputs, parameter_values: body.parameter_values as Record<string, unknown> });
      job.creator = c.user!.pk;
      return jobJson(job);
    }],
    ['GET', /^\/v1\/job-templates\/(\d+)\/?$/, (_c, m) => templates[Number(m[1]) - 1] ?? fail404()],
    ['POST', /^\/v1\/jobs\/list\/?$/, (c) => jobs.filter((j) => matchesJobFilter(j, json(c))).map(jobJson)],
    ['GET', /^\/v1\/jobs\/(\d+)\/?$/, (_c, m) => jobJson(findJob(m[1]!))],
    ['GET', /^\/v1\/jobs\/(\d+)\/acquire\/?$/, (c, m) => {
      const node = needNode(c);
      const job = findJob(m[1]!);
      if (job.node === node.pk) return jobJson(job);
      if (job.node !== null) throw fail(406, `Attempted to acquire job #${job.pk} that has already been acquired`);
      if (phaseOf(job) === 'FINISHED' || phaseOf(job) === 'CANCELLED') throw ipt(job, 'acquire', 'Job has already been finalised');
      job.node = node.pk;
      return jobJson(job);
    }],
    ['DELETE', /^\/v1\/jobs\/(\d+)\/release\/?$/, (c, m) => {
      const job = findJob(m[1]!);
      if (!ownsJob(c, job) && !workingJob(c, job)) throw fail(403, DENIED);
      if (workingJob(c, job)) throw html(500);
      if (job.node !== c.node!.pk) return jobJson(job);
      if (phaseOf(job) !== 'CREATED' && phaseOf(job) !== 'ERRORED') throw ipt(job, 'release', "Can't release a started or finalised job");
      job.node = null;
      return jobJson(job);
    }],
    ['POST', /^\/v1\/jobs\/(\d+)\/start\/?$/, (c, m) => {
      const job = findJob(m[1]!);
      if (!ownsJob(c, job)) throw fail(403, DENIED);
      if (typeof json(c).send_notification !== 'string') throw fail(400, 'Unable to parse JSON: send_notification is required');
      if (c.node!.current_job !== null) throw fail(406, 'Attempted to start a job with another already in progress');
      if (phaseOf(job) !== 'CREATED') throw ipt(job, 'start', 'Job already started');
      job.start_time = now();
      c.node!.current_job = job.pk;
      return jobJson(job);
    }],
    // The reference's route regex: `0.<digits>` or `1.<zeros>` (its unescaped `.` matches any character).
    ['POST', /^\/v1\/jobs\/(\d+)\/progress\/(0.\d+|1.0+)\/?$/, (c, m) => {
      const job = findJob(m[1]!);
      const record: ProgressCall = { job: job.pk, value: m[2]!, status: 500, body: undefined };
      progressCalls.push(record);
      if (!ownsJob(c, job)) throw ((record.status = 403), fail(403, DENIED));
      const body = json(c);
      record.body = body;
      // The body's keys become keyword arguments beside the reference's own `node` and `progress`.
      if ('node' in body || 'progress' in body) throw html(500);
      if (!workingJob(c, job)) throw html(500);
      if (phaseOf(job) !== 'STARTED') throw ((record.status = 406), ipt(job, 'progress', 'Can only progress from the STARTED phase'));
      record.status = 200;
      return jobJson(job);
    }],
    ['POST', /^\/v1\/jobs\/(\d+)\/finish\/?$/, (c, m) => {
      const job = findJob(m[1]!);
      if (!ownsJob(c, job) && !workingJob(c, job)) throw fail(403, DENIED);
      const body = json(c);
      if (typeof body.success !== 'boolean' || typeof body.send_notification !== 'string' || ('error' in body && typeof body.error !== 'string')) {
        throw fail(400, 'Unable to parse JSON: success (bool) and send_notification (str) are required; error must be a string');
      }
      if (!workingJob(c, job)) throw html(500);
      c.node!.current_job = null;
      if (job.node !== c.node!.pk || phaseOf(job) === 'CANCELLED') return jobJson(job);
      if (phaseOf(job) !== 'STARTED') throw ipt(job, typeof body.error === 'string' ? 'error' : 'finish', 'Job not in the Started phase');
      job.end_time = now();
      if (typeof body.error === 'string') job.error_reason = body.error;
      return jobJson(job);
    }],
    ['DELETE', /^\/v1\/jobs\/(\d+)\/reset\/?$/, (c, m) => {
      const job = findJob(m[1]!);
      if (!ownsJob(c, job)) throw fail(403, DENIED);
      if (phaseOf(job) !== 'ERRORED') throw ipt(job, 'reset', 'Job is not in the ERRORED phase');
      softDeleteOutputsOf(job);
      job.start_time = job.end_time = job.error_reason = null;
      return jobJson(job);
    }],
    ['DELETE', /^\/v1\/jobs\/(\d+)\/abort\/?$/, (c, m) => {
      if (!admin(c)) throw fail(403, DENIED);
      const job = findJob(m[1]!);
      if (phaseOf(job) === 'FINISHED' || phaseOf(job) === 'CANCELLED') throw ipt(job, 'abort', "Can't abort a finalised job");
      softDeleteOutputsOf(job);
      job.start_time = job.end_time = job.error_reason = job.node = null;
      return jobJson(job);
    }],
    ['POST', /^\/v1\/jobs\/(\d+)\/outputs\/([^/]+)\/([^/]+)$/, (c, m) => {
      const job = findJob(m[1]!);
      if (!admin(c) && !ownsJob(c, job)) throw fail(403, DENIED);
      if (!/filename=/.test(String(c.headers['content-disposition'] ?? ''))) {
        throw fail(400, 'Missing filename. Request should include a Content-Disposition header with a filename parameter.');
      }
      if (c.body.length === 0) throw html(500);
      const [name, type] = [decodeURIComponent(m[2]!), decodeURIComponent(m[3]!)];
      if (job.start_time === null) throw fail(417, 'Attempted to perform the following action on an un-started job: add_output');
      if (phaseOf(job) === 'FINISHED') throw fail(406, 'Attempted to perform the following action on a finished job: add_output');
      if (outputs.some((o) => o.job === job.pk && o.name === name && o.type === type)) {
        throw fail(400, `Bad name '${name}': Job already has an output by this name/type (${name}/${type})`);
      }
      const output: RefOutput = { pk: ++outputPk, job: job.pk, name, type, bytes: c.body, creator: c.user!.pk, creation_time: now(), deletion_time: null };
      outputs.push(output);
      return outputJson(output);
    }],
    ['DELETE', /^\/v1\/jobs\/(\d+)\/outputs\/([^/]+)\/([^/]+)$/, (c, m) => {
      if (!admin(c)) throw fail(403, DENIED);
      const output = namedOutput(findJob(m[1]!), m);
      output.deletion_time ??= now();
      return outputJson(output);
    }],
    ['GET', /^\/v1\/jobs\/(\d+)\/outputs\/([^/]+)\/([^/]+)$/, (_c, m) => ['bytes', namedOutput(findJob(m[1]!), m).bytes]],
    ['GET', /^\/v1\/jobs\/(\d+)\/outputs\/([^/]+)\/([^/]+)\/info$/, (_c, m) => outputJson(namedOutput(findJob(m[1]!), m))],
    ['GET', /^\/v1\/job-outputs\/(\d+)\/?$/, (_c, m) => outputJson(outputs.find((o) => o.pk === Number(m[1])) ?? fail404())],
    ['POST', /^\/v1\/job-outputs\/(\d+)\/download\/?$/, (_c, m) => ['bytes', (outputs.find((o) => o.pk === Number(m[1])) ?? fail404()).bytes]],
    ['POST', /^\/v1\/job-templates\/import\/?$/, (c) => {
      if (!admin(c)) throw fail(403, DENIED);
      const spec = json(c);
      try {
        checkTemplateSpec(spec);
      } catch (err) {
        throw fail(400, `Bad job template: ${(err as Error).message}`);
      }
      const specific = spec.specific as Record<string, unknown>;
      const pk = api.addTemplate({ name: String(spec.name), type: String(specific.job_type), executor_class: String(specific.executor_class), parameters: specific.parameters as Record<string, unknown> });
      Object.assign(templates[pk - 1]!, { licence: REFERENCE_LICENCES.indexOf(String(spec.licence)) + 1, domain: spec.domain ?? null, description: spec.description ?? '' });
      return templates[pk - 1];
    }],
    ['DELETE', /^\/v1\/job-outputs\/(\d+)\/hard\/?$/, (c, m) => {
      if (!admin(c)) throw fail(403, DENIED);
      const output = outputs.find((o) => o.pk === Number(m[1])) ?? fail404();
      outputs.splice(outputs.indexOf(output), 1);
      return { ...outputJson(output), pk: null };
    }],
  ];

  /** The output a (name, type) lookup finds: soft-deleted ones included. */
  function namedOutput(job: RefJob, m: RegExpMatchArray): RefOutput {
    const [name, type] = [decodeURIComponent(m[2]!), decodeURIComponent(m[3]!)];
    const output = outputs.find((o) => o.job === job.pk && o.name === name && o.type === type);
    if (!output) throw fail(400, `Bad name '${name}': Job has no output by this name/type (${name}/${type})`);
    return output;
  }

  function handle(c: Call): [number, unknown] {
    const route = c.path.split('?')[0]!;
    if (route === '/v1/auth/obtain' || route === '/v1/auth/refresh') return authRoute(route, c);
    const nodeHeader = c.headers['node-id'];
    if (nodeHeader !== undefined) {
      const pk = Number(nodeHeader);
      if (!/^\d+$/.test(String(nodeHeader))) throw fail(400, `Bad Node-Id header '${String(nodeHeader)}': Unable to parse into an integer primary-key`);
      c.node = nodes.find((n) => n.pk === pk);
      if (!c.node) throw fail(400, `Bad Node-Id header '${String(nodeHeader)}': No node with this primary-key`);
      c.node.last_seen = now();
    }
    const found = routes.find(([method, re]) => (method === c.method || (method === 'GET' && c.method === 'HEAD')) && re.test(route));
    if (!found) throw html(404);
    const bearer = /^Bearer (.+)$/.exec(String(c.headers.authorization ?? ''))?.[1];
    if (bearer === undefined) throw fail(401, 'Authentication credentials were not provided.');
    c.user = users.find((u) => u.pk === upkOf(bearer));
    if (!c.user) throw fail(401, 'Given token not valid for any token type');
    const result = found[2](c, route.match(found[1])!);
    return Array.isArray(result) && typeof result[0] === 'number' ? (result as [number, unknown]) : Array.isArray(result) && result[0] === 'bytes' ? [200, result[1]] : [200, result];
  }

  function authRoute(route: string, c: Call): [number, unknown] {
    const body = json(c);
    if (route === '/v1/auth/obtain') {
      const user = users.find((u) => u.username === body.username && u.password === body.password);
      if (!user) throw fail(401, 'No active account found with the given credentials');
      return [200, { refresh: token(user.pk, 'refresh'), access: token(user.pk, 'access') }];
    }
    const upk = upkOf(String(body.refresh));
    if (upk === undefined) throw fail(401, 'Token is invalid or expired');
    return [200, { access: token(upk, 'access') }];
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const c: Call = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks), user: undefined, node: undefined };
      requests.push(`${c.method} ${c.path}`);
      try {
        const [status, body] = handle(c);
        if (Buffer.isBuffer(body)) {
          res.writeHead(status, { 'content-type': 'application/data', 'content-length': body.length }).end(body);
        } else if (body === undefined) {
          res.writeHead(status).end();
        } else {
          const text = JSON.stringify(body);
          res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
        }
      } catch (err) {
        const e = err instanceof HttpError ? err : html(500);
        if (e.detail === undefined) res.writeHead(e.status, { 'content-type': 'text/html' }).end(`<h1>${e.status === 404 ? 'Not Found' : 'Server Error (500)'}</h1>`);
        else res.writeHead(e.status, { 'content-type': 'application/json' }).end(JSON.stringify({ detail: e.detail }));
      }
    });
  });
  // Job sockets: the reference refuses watchers of jobs created without web-socket notifications.
  server.on('upgrade', (_req, socket: Socket) => socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'));
  // Registered before the helper's own listener, so an unreachable backend's sockets die at once.
  server.on('connection', (socket: Socket) => {
    if (unreachable) socket.destroy();
  });
  const { url, close, dropConnections } = await listenOnLoopback(server);

  const api: ReferenceBackend = {
    url,
    users,
    nodes,
    jobs,
    outputs,
    progressCalls,
    requests,
    addUser(username, password, options = {}) {
      const user = { pk: users.length + 1, username, password, isStaff: options.admin ?? false };
      users.push(user);
      return user;
    },
    addTemplate(spec) {
      templates.push({
        pk: templates.length + 1,
        version: 1,
        description: '',
        scope: 'public',
        domain: null,
        licence: 2,
        creator: 1,
        creation_time: now(),
        deletion_time: null,
        required_packages: '',
        ...spec,
      });
      return templates.length;
    },
    createJob(template, values = {}) {
      const job: RefJob = {
        pk: jobs.length + 1,
        template,
        start_time: null,
        end_time: null,
        error_reason: null,
        input_values: values.input_values ?? {},
        parameter_values: values.parameter_values ?? {},
        node: null,
        description: '',
        creator: 1,
        creation_time: now(),
        deletion_time: null,
      };
      jobs.push(job);
      return job;
    },
    job: (pk) => jobs.find((j) => j.pk === pk)!,
    output: (job, name, type) => outputs.find((o) => o.job === job && o.name === name && o.type === type),
    setUnreachable(down) {
      unreachable = down;
      if (down) dropConnections();
    },
    close,
  };
  return api;
}

// ── template import: the reference's checks (ufdl-json-messages JobTemplateSpec, strict; licence and
// domain must exist; the contract must be one it knows; every type name must be a job type) ─────

/** The reference's seeded licence names, in pk order. */
export const REFERENCE_LICENCES = [
  'AGPL3', 'Apache 2.0', 'BSD 2-clause', 'BSD 3-clause', 'CC0', 'CC-BY-4.0', 'CC-BY-SA-4.0',
  'GPL2', 'GPL3', 'LGPL3', 'MIT', 'Mozilla Public License 2.0', 'The Unlicense', 'Proprietary',
];
const REFERENCE_DOMAINS = ['ic', 'is', 'od', 'sc', 'sp'];
const REFERENCE_CONTRACTS = ['Train', 'Predict', 'Export'];
const REFERENCE_JOB_TYPES = new Set([
  'UFDLType', 'UFDLJSONType', 'FiniteJSONType', 'ServerResidentType', 'NamedServerType', 'ValueType', 'str', 'int', 'float', 'bool',
  'Array', 'Map', 'CUDAVersion', 'Dataset', 'DockerImage', 'Domain', 'Framework', 'Hardware', 'PretrainedModel', 'BLOB',
  'Compressed', 'JSON', 'Nothing', 'JobOutput', 'Model', 'Name', 'PK',
]);

function strictKeys(where: string, value: unknown, allowed: string[], required: string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where}: not an object`);
  const object = value as Record<string, unknown>;
  const extra = Object.keys(object).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw new Error(`${where}: unexpected properties ${extra.join(', ')}`);
  const missing = required.filter((k) => !(k in object));
  if (missing.length > 0) throw new Error(`${where}: missing ${missing.join(', ')}`);
  return object;
}

function checkTypeNames(where: string, typeString: string): string {
  const node = parseTypeString(typeString);
  const names = (n: TypeArg): string[] => (n.kind === 'type' ? [n.name, ...n.args.flatMap(names)] : []);
  const unknown = names(node).slice(1).find((name) => !REFERENCE_JOB_TYPES.has(name));
  if (unknown !== undefined) throw new Error(`${where}: Error parsing type-string "${typeString}": unknown type '${unknown}'`);
  return node.kind === 'type' ? node.name : '';
}

/**
 * The inputs of the reference's Train and Predict contracts (ufdl-job-contracts), written out here
 * for the type arguments of `type`: what create-job checks a job's inputs against.
 */
function contractInputs(type: string): Record<string, string[]> {
  const contract = parseTypeString(type);
  if (contract.kind !== 'type' || contract.args.length !== 2) return {};
  const [domain, framework] = contract.args.map((a) => printType(a as TypeNode));
  if (contract.name === 'Train') return { dataset: [`PK<Dataset<${domain}>>`] };
  if (contract.name === 'Predict') return { model: [`JobOutput<Model<${domain}, ${framework}>>`], dataset: [`PK<Dataset<${domain}>>`, `Name<Dataset<${domain}>>`] };
  return {};
}

function checkTemplateSpec(body: Record<string, unknown>): void {
  const spec = strictKeys('template', body, ['name', 'version', 'description', 'scope', 'licence', 'domain', 'specific'], ['name', 'scope', 'licence', 'specific']);
  if (!REFERENCE_LICENCES.includes(String(spec.licence))) throw new Error(`Unknown licence '${String(spec.licence)}'`);
  if (spec.domain !== undefined && !REFERENCE_DOMAINS.includes(String(spec.domain))) throw new Error(`Unknown data-domain '${String(spec.domain)}'`);
  const specific = strictKeys('specific', spec.specific, ['job_type', 'executor_class', 'required_packages', 'parameters'], ['job_type', 'executor_class', 'required_packages', 'parameters']);
  const contract = parseTypeString(String(specific.job_type));
  if (contract.kind !== 'type' || !REFERENCE_CONTRACTS.includes(contract.name)) throw new Error(`Unknown contract-name ${contract.kind === 'type' ? contract.name : String(specific.job_type)}`);
  checkTypeNames('job_type', String(specific.job_type));
  for (const [name, param] of Object.entries(specific.parameters as Record<string, unknown>)) {
    const p = strictKeys(`parameter ${name}`, param, ['types', 'default', 'default_type', 'const', 'help'], ['types', 'help']);
    if (!Array.isArray(p.types) || p.types.length === 0) throw new Error(`parameter ${name}: types must be a non-empty array`);
    for (const type of p.types as string[]) checkTypeNames(`parameter ${name}`, type);
    if (p.default_type !== undefined) checkTypeNames(`parameter ${name}`, String(p.default_type));
    if (p.const === true && !('default' in p)) throw new Error('Must provide a default value for const parameters');
  }
}

// ── the two filters a worker sends (the rest of the filter language is not needed here) ────────

type Expression = { type: string; field?: string; value?: unknown; invert?: boolean; sub_expressions?: Expression[] };

function evaluate(expression: Expression, field: (name: string) => unknown): boolean {
  let result: boolean;
  if (expression.type === 'and') result = (expression.sub_expressions ?? []).every((e) => evaluate(e, field));
  else if (expression.type === 'or') result = (expression.sub_expressions ?? []).some((e) => evaluate(e, field));
  else if (expression.type === 'isnull') result = field(expression.field!) === null;
  else if (expression.type === 'exact') result = field(expression.field!) === expression.value;
  else throw html(500);
  return expression.invert ? !result : result;
}

function matches(spec: Record<string, unknown>, field: (name: string) => unknown): boolean {
  return ((spec.expressions as Expression[] | undefined) ?? []).every((e) => evaluate(e, field));
}

function matchesJobFilter(job: RefJob, spec: Record<string, unknown>): boolean {
  return matches(spec, (name) => {
    // Every template here is workable: the relation exists.
    if (name === 'template.workabletemplate') return job.template;
    if (name in job) return (job as unknown as Record<string, unknown>)[name];
    throw html(500); // Django's FieldError
  });
}

function matchesNodeFilter(node: RefNode, spec: Record<string, unknown>): boolean {
  return matches(spec, (name) => {
    if (name in node) return (node as unknown as Record<string, unknown>)[name];
    throw html(500);
  });
}
