/**
 * {@link UfdlClient}: typed calls of the UFDL API for the agent and the CLI, speaking only the
 * reference protocol (docs/COMPATIBILITY.md); extensions (`X-UFDL-Wait`, capabilities) are detected and optional.
 *
 * Retry rules. Idempotent calls (lists, retrieves, `acquireJob` — idempotent for the same node —
 * `ping`, `patchNode`, downloads, info) retry transient failures with jittered back-off within the
 * configured attempts and total time. Non-idempotent calls (`startJob`, `progressJob`, `finishJob`,
 * `releaseJob`, `resetJob`, `abortJob`, `cancelJob`, `createJob`, `createNode`, `createUser`,
 * `importTemplate`, `uploadOutput`) are sent once: after a failure that is
 * {@link ClientError.ambiguous}, re-read the job ({@link UfdlClient.checkLanded}, `getOutputInfo`)
 * and decide. Every call is retried once after a 401, with a refreshed token or a new login.
 */
import type { FilterSpec } from '../protocol/filter.js';
import { formatProgress, progressBodyForReference } from '../protocol/progress.js';
import {
  CAPABILITIES_PATH,
  LIMIT_HEADER,
  MAX_WAIT_SECONDS,
  WAIT_HEADER,
  WAITING_PATH,
  type Capabilities,
  type HardwareJson,
  type JobJson,
  type JobNotification,
  type JobOutputJson,
  type NodeJson,
  type NodeSpec,
  type TemplateJson,
  type TypedValue,
  type UserJson,
  type WorkflowJson,
} from '../protocol/wire.js';
import { TokenManager, type TokenManagerStatus, type TokenPair } from './auth.js';
import type { EndpointsStatus } from './endpoints.js';
import { ClientError, isClientError } from './errors.js';
import { Http, apiPath, pkSegment, textSegment, type ReachabilityListener } from './http.js';
import { resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js';
import { transitionLanded, type ReconcilableAction } from './reconcile.js';
import { Transport, type CallSpec } from './transport.js';
import type { DownloadResult, UploadResult } from './uploads.js';
import { appendLog, followLog, readLogPiece, type AppendResult, type LogFollow, type LogFollowHandlers, type LogPieceResult } from './live-log.js';
import { watchJob, type JobWatch, type WatchContext, type WatchOptions } from './watch.js';
import { storableJson, storableText } from '../protocol/storable-text.js';

/** Uploads and downloads are loaded by the first transfer: a command that makes none starts faster. */
let transfers: Promise<typeof import('./uploads.js')> | undefined;
const loadTransfers = () => (transfers ??= import('./uploads.js'));

export interface CallOptions {
  /** Abort the call (and its retries). `client.close()` aborts every call too. */
  signal?: AbortSignal;
}

export interface ListJobsOptions extends CallOptions {
  /**
   * Ask the server to hold an empty answer up to this long until a job becomes acquirable. Sent as
   * `X-UFDL-Wait` only when the server's capabilities offer it (capped at its maximum), with the
   * response timeout lengthened to match; otherwise ignored and the call answers at once.
   */
  waitSeconds?: number;
  /**
   * At most this many jobs, the first of the result: sent as `X-UFDL-Limit` so that our server reads
   * and sends no more; a server that ignores it (the reference) sends them all, and the answer is cut
   * here, so callers see the same either way.
   */
  limit?: number;
  /**
   * Take the answer as the server sent it, for the caller to check: the agent's poll says what it got
   * instead of a list, and skips a malformed entry (logging it once) to run the jobs behind it, where
   * a whole list refused for one bad entry would stop the node. By default an answer that is not a
   * list of jobs is a protocol error, for readers that would misread it.
   */
  asSent?: boolean;
}

export interface CreateJobBody {
  input_values: Record<string, TypedValue>;
  /** @default {} (the reference crashes without it, bug B3) */
  parameter_values?: Record<string, TypedValue>;
  description?: string;
  notification_override?: NotificationOverride;
}

export interface NotificationOverride {
  actions: Partial<Record<'on_acquire' | 'on_release' | 'on_start' | 'on_progress' | 'on_finish' | 'on_error' | 'on_reset' | 'on_abort' | 'on_cancel', Array<Record<string, unknown>>>>;
  keep_default?: boolean;
}

/**
 * Web-socket notifications on every transition, keeping the default ones: what the reference web UI
 * sends so that its jobs can be watched (the reference refuses watchers of jobs without them).
 */
export const WEBSOCKET_NOTIFICATIONS: NotificationOverride = Object.freeze({
  actions: {
    on_acquire: [{}],
    on_release: [{}],
    on_start: [{}],
    on_progress: [{}],
    on_finish: [{}],
    on_error: [{}],
    on_reset: [{}],
    on_abort: [{}],
    on_cancel: [{}],
  },
  keep_default: true,
});

export interface CreateUserBody {
  username: string;
  password: string;
  email?: string;
  first_name?: string;
  last_name?: string;
  is_staff?: boolean;
  /** Extension of this project's server: a worker account (may act as a node when the server limits that). */
  is_worker?: boolean;
}

export interface ClientStatus {
  /** The address in use (the first of {@link ClientStatus.endpoints} unless the client failed over). */
  serverUrl: string;
  /** Every address, the one in use, failures and switches (`endpoints.ts`). */
  endpoints: EndpointsStatus;
  username: string;
  nodePk: number | null;
  /** `undefined`: not asked yet; `null`: a reference server (no extensions). */
  capabilities: Capabilities | null | undefined;
  auth: TokenManagerStatus;
}

export class UfdlClient {
  readonly options: ResolvedClientOptions;
  /** The token manager: `obtain`, `refresh`, `verify`, `getStatus`. */
  readonly auth: TokenManager;
  readonly #http: Http;
  readonly #transport: Transport;
  readonly #watches = new Set<JobWatch>();
  /** Shared with siblings made by {@link UfdlClient.forNode}. */
  readonly #shared: { capabilities: Capabilities | null | undefined; root: UfdlClient; siblings: Set<UfdlClient> };
  #nodePk: number | null;

  /** Resolves and validates `options` (a TypeError names a bad key); reads `passwordFile` once. */
  constructor(options: ClientOptions);
  /** @internal Used by {@link UfdlClient.forNode}; `options` is ignored. */
  constructor(options: ClientOptions, from: UfdlClient, nodePk: number | null);
  constructor(options: ClientOptions, from?: UfdlClient, nodePk?: number | null) {
    if (from) {
      this.options = from.options;
      this.#http = from.#http;
      this.auth = from.auth;
      this.#shared = from.#shared;
      this.#nodePk = nodePk ?? null;
      this.#shared.siblings.add(this);
    } else {
      this.options = resolveClientOptions(options);
      this.#http = new Http(this.options);
      this.auth = new TokenManager(this.#http);
      this.#shared = { capabilities: undefined, root: this, siblings: new Set() };
      this.#nodePk = this.options.nodePk;
    }
    this.#transport = new Transport(this.#http, this.auth, () => this.#nodePk);
  }

  /**
   * A sibling client acting as another node (its own `Node-Id`, e.g. one per GPU slot) that shares
   * this client's login, tokens, connections and capabilities: one login for all slots. Closing a
   * sibling closes its own watchers only; closing the root client closes everything.
   */
  forNode(nodePk: number | null): UfdlClient {
    if (nodePk !== null) pkSegment(nodePk, 'nodePk');
    return new UfdlClient(this.options as unknown as ClientOptions, this, nodePk);
  }

  /** The node pk sent as `Node-Id`, or null. */
  get nodePk(): number | null {
    return this.#nodePk;
  }

  /** Set (or with null, stop sending) the `Node-Id` header, e.g. after registering or a `bad-node-id`. */
  setNodePk(pk: number | null): void {
    if (pk !== null) pkSegment(pk, 'nodePk');
    this.#nodePk = pk;
  }

  /**
   * Listen to the outcome of every attempt of every call of this client and its siblings (retries
   * included): whether the server answered. How the agent notices an outage while a call is still
   * retrying. Returns the unsubscriber.
   */
  onReachability(listener: ReachabilityListener): () => void {
    return this.#http.onReachability(listener);
  }

  /** The address requests go to now. */
  get serverUrl(): string {
    return this.#http.endpoints.current;
  }

  /** Be told each time the client moves to another server address. Returns the unsubscriber. */
  onServerSwitch(listener: (from: string, to: string) => void): () => void {
    return this.#http.endpoints.onSwitch(listener);
  }

  /** Capabilities as last fetched: `undefined` not asked yet, `null` reference server. */
  get capabilities(): Capabilities | null | undefined {
    return this.#shared.capabilities;
  }

  getStatus(): ClientStatus {
    return {
      serverUrl: this.#http.endpoints.current,
      endpoints: this.#http.endpoints.getStatus(),
      username: this.options.username,
      nodePk: this.#nodePk,
      capabilities: this.#shared.capabilities,
      auth: this.auth.getStatus(),
    };
  }

  /**
   * Abort in-flight calls, close web-socket watchers and idle connections. Idempotent. On a
   * {@link UfdlClient.forNode} sibling: its own watchers only.
   */
  close(): void {
    for (const watch of this.#watches) watch.close();
    this.#watches.clear();
    if (this.#shared.root !== this) {
      this.#shared.siblings.delete(this);
      return;
    }
    for (const sibling of this.#shared.siblings) sibling.close();
    this.#http.close();
  }

  // ── auth ────────────────────────────────────────────────────────────────────────────────────

  /** Log in (`POST /v1/auth/obtain`). Throws kind `auth` when the credentials are refused. */
  async obtain(opts: CallOptions = {}): Promise<TokenPair> {
    return this.auth.obtain(opts.signal);
  }

  /** A new access token from the refresh token (`POST /v1/auth/refresh`). */
  async refresh(opts: CallOptions = {}): Promise<string> {
    return this.auth.refresh(opts.signal);
  }

  /** Whether the server accepts `token` (default: the current access token). */
  async verify(token?: string, opts: CallOptions = {}): Promise<boolean> {
    return this.auth.verify(token, opts.signal);
  }

  // ── discovery ───────────────────────────────────────────────────────────────────────────────

  /**
   * `GET /v1/ufdl-agent/capabilities` (docs/ARCHITECTURE.md, "Extensions"). Any 4xx other than 401, or an answer that is not
   * our capabilities JSON, means a server without extensions: `null`. Network errors and 5xx throw.
   * The result is kept in {@link UfdlClient.capabilities}.
   */
  async getCapabilities(opts: CallOptions = {}): Promise<Capabilities | null> {
    let result: Capabilities | null;
    try {
      const body = await this.#transport.json<unknown>({ method: 'GET', path: CAPABILITIES_PATH.slice(1), idempotent: true, nodeId: false, signal: opts.signal });
      result = isCapabilities(body) ? body : null;
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      const noSuchRoute = err.kind === 'protocol' || (err.status !== undefined && err.status >= 400 && err.status < 500 && err.status !== 401);
      if (!noSuchRoute) throw err;
      result = null;
    }
    this.#shared.capabilities = result;
    this.options.logger.info({ extensions: result ? result.extensions : null }, result ? 'server offers ufdl-agent extensions' : 'server without extensions (reference protocol only)');
    return result;
  }

  // ── jobs ────────────────────────────────────────────────────────────────────────────────────

  /** `POST /v1/jobs/list` with a filter; see {@link ListJobsOptions.waitSeconds}. Idempotent. */
  async listJobs(filter: FilterSpec = {}, opts: ListJobsOptions = {}): Promise<JobJson[]> {
    const spec: CallSpec = { method: 'POST', path: 'v1/jobs/list', json: filter, idempotent: true, signal: opts.signal };
    const wait = opts.waitSeconds ?? 0;
    if (wait > 0) {
      if (this.#shared.capabilities === undefined) await this.getCapabilities({ ...opts }).catch(() => undefined);
      const offered = this.#shared.capabilities?.extensions.wait;
      if (offered) {
        const seconds = Math.min(wait, offered.max_seconds, MAX_WAIT_SECONDS);
        spec.headers = { [WAIT_HEADER]: String(seconds) };
        spec.extraTimeoutMs = seconds * 1000;
      }
    }
    if (opts.limit !== undefined) spec.headers = { ...spec.headers, [LIMIT_HEADER]: String(opts.limit) };
    const jobs = await this.#transport.json<unknown>(spec);
    if (opts.asSent === true && !Array.isArray(jobs)) return jobs as JobJson[];
    if (!Array.isArray(jobs) || (opts.asSent !== true && !jobs.every(isJobLike))) throw notJobs(spec, 'a list of jobs');
    return opts.limit !== undefined && jobs.length > opts.limit ? jobs.slice(0, opts.limit) : jobs;
  }

  /** `GET /v1/jobs/{pk}`. Idempotent. */
  async getJob(pk: number, opts: CallOptions = {}): Promise<JobJson> {
    const job: unknown = await this.#job('GET', pk, undefined, true, opts);
    if (!isJobLike(job)) throw notJobs({ method: 'GET', path: apiPath('v1', 'jobs', pkSegment(pk)) }, 'a job');
    return job;
  }

  /**
   * Extension: `GET /v1/jobs/{pk}/workflow`, a workflow's parent with its graph and each node's job.
   * Null when the server has no such route (the reference) or the job is not a workflow. Idempotent.
   */
  async getWorkflow(pk: number, opts: CallOptions = {}): Promise<WorkflowJson | null> {
    try {
      return await this.#transport.json<WorkflowJson>({ method: 'GET', path: apiPath('v1', 'jobs', pkSegment(pk), 'workflow'), idempotent: true, signal: opts.signal });
    } catch (err) {
      if (isClientError(err, 'not-found')) return null;
      throw err;
    }
  }

  /**
   * `GET /v1/jobs/{pk}/acquire`. Idempotent for the same node, so retried. 406 → kind `taken`
   * (another node has it) or `phase` (finalised). Re-read the job afterwards: the reference's
   * acquire is not atomic.
   */
  async acquireJob(pk: number, opts: CallOptions = {}): Promise<JobJson> {
    return this.#job('GET', pk, 'acquire', true, opts, undefined, 'acquire');
  }

  /** `DELETE /v1/jobs/{pk}/release`. Sent once; see {@link UfdlClient.checkLanded}. */
  async releaseJob(pk: number, opts: CallOptions = {}): Promise<JobJson> {
    return this.#job('DELETE', pk, 'release', false, opts);
  }

  /**
   * `POST /v1/jobs/{pk}/start` with `{"send_notification": "email"}` as the reference worker sends.
   * Sent once. 406 → kind `node-busy` (this node still has a `current_job`) or `phase`.
   */
  async startJob(pk: number, opts: CallOptions & { sendNotification?: string } = {}): Promise<JobJson> {
    return this.#job('POST', pk, 'start', false, opts, { send_notification: opts.sendNotification ?? 'email' }, 'start');
  }

  /**
   * `POST /v1/jobs/{pk}/progress/{value}` with `data` as the body (forwarded to watchers as
   * `transition_data`). The value is formatted as the reference's route accepts (`0.xxx`, `1.0`).
   * Sent once: a lost update is superseded by the next. Unless the server is known to offer our
   * extensions, an object with a key `node` or `progress` (the reference answers 500 to them) is sent
   * nested as `{"metadata": data}`.
   */
  async progressJob(pk: number, value: number, data: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<JobJson> {
    // A job's own text: storable, or the server refuses the update (storable-text.ts).
    const storable = storableJson(data) as Record<string, unknown>;
    const body = this.#shared.capabilities ? storable : progressBodyForReference(storable);
    return this.#job('POST', pk, `progress/${formatProgress(value)}`, false, opts, body);
  }

  /**
   * `POST /v1/jobs/{pk}/finish`. The body always has `success` (false iff `error` is given) and
   * `send_notification` (the reference requires both); `error` makes the job ERRORED. Sent once;
   * see {@link UfdlClient.checkLanded}.
   */
  async finishJob(pk: number, opts: CallOptions & { error?: string; sendNotification?: string } = {}): Promise<JobJson> {
    const body: Record<string, unknown> = { success: opts.error === undefined, send_notification: opts.sendNotification ?? 'email' };
    // A job's own text (its log's tail): storable, or the server refuses the finish and the job stays
    // running there (storable-text.ts). Also for an error journalled by an older agent.
    if (opts.error !== undefined) body.error = storableText(opts.error);
    return this.#job('POST', pk, 'finish', false, opts, body);
  }

  /** `DELETE /v1/jobs/{pk}/reset`: ERRORED → CREATED, still acquired by this node. Sent once. */
  async resetJob(pk: number, opts: CallOptions = {}): Promise<JobJson> {
    return this.#job('DELETE', pk, 'reset', false, opts);
  }

  /** `DELETE /v1/jobs/{pk}/abort` (admin): back to CREATED, unacquired. Sent once. */
  async abortJob(pk: number, opts: CallOptions = {}): Promise<JobJson> {
    return this.#job('DELETE', pk, 'abort', false, opts);
  }

  /** `DELETE /v1/jobs/{pk}/cancel` (admin). Sent once (a repeat is a harmless 200 no-op). */
  async cancelJob(pk: number, opts: CallOptions = {}): Promise<JobJson> {
    return this.#job('DELETE', pk, 'cancel', false, opts);
  }

  /**
   * After an ambiguous failure of a non-idempotent job call: re-read the job (retried) and say
   * whether the transition landed, by the rules in `reconcile.ts`. The caller decides what next.
   */
  async checkLanded(action: ReconcilableAction, pk: number, opts: CallOptions = {}): Promise<{ landed: boolean; job: JobJson }> {
    const job = await this.getJob(pk, opts);
    return { landed: transitionLanded(action, job, this.#nodePk), job };
  }

  // ── outputs ─────────────────────────────────────────────────────────────────────────────────

  /**
   * `POST /v1/jobs/{pk}/outputs/{name}/{type}`, streaming `filePath` from disk with
   * `Content-Type: application/data` and `Content-Disposition: attachment; filename=<name>`.
   * Sent once. 400 "already has an output" → kind `duplicate-output` (the name and type are taken:
   * by an earlier try of this upload, or by an output someone else left; see the agent's
   * `outputs/server-copy.ts`); 417 → `not-started`; 406 → `phase` (finished job). Answers the
   * server's record, the size and SHA-256 of the bytes sent (hashed as they were read), and the
   * server's own SHA-256 of what it stored when it says.
   */
  async uploadOutput(pk: number, name: string, type: string, filePath: string, opts: CallOptions = {}): Promise<UploadResult> {
    const path = this.#outputPath(pk, name, type);
    const { uploadFile } = await loadTransfers();
    return uploadFile(this.#transport, { method: 'POST', path, op: 'upload', signal: opts.signal }, name, filePath);
  }

  /** `GET /v1/jobs/{pk}/outputs/{name}/{type}/info`. Unknown output → 400 kind `bad-request`. Idempotent. */
  async getOutputInfo(pk: number, name: string, type: string, opts: CallOptions = {}): Promise<JobOutputJson> {
    return this.#transport.json({ method: 'GET', path: `${this.#outputPath(pk, name, type)}/info`, idempotent: true, signal: opts.signal });
  }

  /**
   * `DELETE /v1/jobs/{pk}/outputs/{name}/{type}` (Delete Output; admin only on the reference). A soft
   * delete: on the reference the output stays listed and still blocks an upload of the same name and
   * type (B6); our server frees the name. Idempotent (deleting a deleted output changes nothing).
   */
  async deleteOutput(pk: number, name: string, type: string, opts: CallOptions = {}): Promise<JobOutputJson> {
    return this.#transport.json({ method: 'DELETE', path: this.#outputPath(pk, name, type), idempotent: true, signal: opts.signal });
  }

  /**
   * `DELETE /v1/job-outputs/{pk}/hard` (admin only): removes the output's row, which frees its name and
   * type on every server. The answer shows `pk: null`. Sent once (a repeat answers 404).
   */
  async hardDeleteOutput(outputPk: number, opts: CallOptions = {}): Promise<JobOutputJson> {
    const path = apiPath('v1', 'job-outputs', pkSegment(outputPk, 'output pk'), 'hard');
    return this.#transport.json({ method: 'DELETE', path, idempotent: false, signal: opts.signal });
  }

  /** `GET /v1/jobs/{pk}/outputs/{name}/{type}` streamed into `destPath` (temp file, then rename). */
  async downloadOutput(pk: number, name: string, type: string, destPath: string, opts: CallOptions = {}): Promise<DownloadResult> {
    const { downloadFile } = await loadTransfers();
    return downloadFile(this.#transport, { method: 'GET', path: this.#outputPath(pk, name, type), signal: opts.signal }, destPath);
  }

  /** `POST /v1/job-outputs/{pk}/download` (how `JobOutput<…>` inputs are fetched) into `destPath`. */
  async downloadJobOutputByPk(outputPk: number, destPath: string, opts: CallOptions = {}): Promise<DownloadResult> {
    const path = apiPath('v1', 'job-outputs', pkSegment(outputPk, 'output pk'), 'download');
    const { downloadFile } = await loadTransfers();
    return downloadFile(this.#transport, { method: 'POST', path, json: { params: {} }, signal: opts.signal }, destPath);
  }

  /** `POST /v1/job-outputs/list`. Idempotent. */
  async listJobOutputs(filter: FilterSpec = {}, opts: CallOptions = {}): Promise<JobOutputJson[]> {
    return this.#transport.json({ method: 'POST', path: 'v1/job-outputs/list', json: filter, idempotent: true, signal: opts.signal });
  }

  // ── live logs (extension: capabilities.extensions.live_logs) ────────────────────────────────

  /**
   * Append `bytes` at `offset` of job `pk`'s live log (as the node running it). Retried: the offset
   * makes it idempotent. A gap is a 416 ClientError; `gapLength(err)` says where to resend from.
   */
  async appendLog(pk: number, offset: number, bytes: Buffer, maxBytes: number, opts: CallOptions = {}): Promise<AppendResult> {
    return appendLog(this.#transport, pk, offset, bytes, maxBytes, opts.signal);
  }

  /** The contiguous piece of job `pk`'s live log from `offset`. Idempotent. */
  async readLog(pk: number, offset: number, opts: CallOptions = {}): Promise<LogPieceResult> {
    return readLogPiece(this.#transport, pk, offset, opts.signal);
  }

  /** Follow job `pk`'s live log from `offset` until the job ends; resumes after a dropped connection. */
  followLog(pk: number, offset: number, handlers: LogFollowHandlers): LogFollow {
    const follow = followLog(this.#socketContext(), pk, offset, handlers);
    const entry = { close: () => follow.close(), get connected() { return true; } };
    this.#watches.add(entry);
    return {
      close: () => {
        this.#watches.delete(entry);
        follow.close();
      },
      get offset() {
        return follow.offset;
      },
    };
  }

  // ── templates ───────────────────────────────────────────────────────────────────────────────

  /** `GET /v1/job-templates/{pk}`. Idempotent. */
  async getTemplate(pk: number, opts: CallOptions = {}): Promise<TemplateJson> {
    return this.#transport.json({ method: 'GET', path: apiPath('v1', 'job-templates', pkSegment(pk)), idempotent: true, signal: opts.signal });
  }

  /** `POST /v1/job-templates/list`. Idempotent. */
  async listTemplates(filter: FilterSpec = {}, opts: CallOptions = {}): Promise<TemplateJson[]> {
    return this.#transport.json({ method: 'POST', path: 'v1/job-templates/list', json: filter, idempotent: true, signal: opts.signal });
  }

  /** `POST /v1/job-templates/import` (admin) with a template spec in the reference's format. Sent once. */
  async importTemplate(spec: Record<string, unknown>, opts: CallOptions = {}): Promise<TemplateJson> {
    return this.#transport.json({ method: 'POST', path: 'v1/job-templates/import', json: spec, idempotent: false, signal: opts.signal });
  }

  /**
   * `POST /v1/job-templates/{pk}/create-job`. `parameter_values` defaults to `{}`. Pass
   * `notification_override: WEBSOCKET_NOTIFICATIONS` to make the job watchable on the reference.
   * Sent once (a retry could create the job twice).
   */
  async createJob(templatePk: number, body: CreateJobBody, opts: CallOptions = {}): Promise<JobJson> {
    const json: Record<string, unknown> = {
      input_values: body.input_values,
      parameter_values: body.parameter_values ?? {},
      description: body.description ?? '',
    };
    if (body.notification_override !== undefined) json.notification_override = body.notification_override;
    const path = apiPath('v1', 'job-templates', pkSegment(templatePk, 'template pk'), 'create-job');
    return this.#transport.json({ method: 'POST', path, json, idempotent: false, signal: opts.signal });
  }

  // ── nodes and hardware ──────────────────────────────────────────────────────────────────────

  /** `POST /v1/nodes/list`. Idempotent. */
  async listNodes(filter: FilterSpec = {}, opts: CallOptions = {}): Promise<NodeJson[]> {
    return this.#transport.json({ method: 'POST', path: 'v1/nodes/list', json: filter, idempotent: true, signal: opts.signal });
  }

  /** `GET /v1/nodes/{pk}`. Idempotent. */
  async getNode(pk: number, opts: CallOptions = {}): Promise<NodeJson> {
    return this.#transport.json({ method: 'GET', path: apiPath('v1', 'nodes', pkSegment(pk)), idempotent: true, signal: opts.signal });
  }

  /**
   * `POST /v1/nodes/create` (201), sent without `Node-Id` as the reference worker does. Sent once: a
   * duplicate (ip, index) is a 400 `bad-request`; look the node up with `nodeIdentityFilter` then.
   */
  async createNode(spec: NodeSpec, opts: CallOptions = {}): Promise<NodeJson> {
    return this.#transport.json({ method: 'POST', path: 'v1/nodes/create', json: spec, idempotent: false, nodeId: false, signal: opts.signal });
  }

  /** `PATCH /v1/nodes/{pk}` (as that node, or admin). Idempotent (sets the same fields again). */
  async patchNode(pk: number, spec: Partial<NodeSpec>, opts: CallOptions = {}): Promise<NodeJson> {
    return this.#transport.json({ method: 'PATCH', path: apiPath('v1', 'nodes', pkSegment(pk)), json: spec, idempotent: true, signal: opts.signal });
  }

  /** `GET /v1/nodes/ping`: a heartbeat as the node of `Node-Id`. Idempotent. */
  async ping(opts: CallOptions = {}): Promise<void> {
    await this.#transport.request({ method: 'GET', path: 'v1/nodes/ping', idempotent: true, signal: opts.signal });
  }

  /**
   * Extension: say why this node does not run job `pk` (`PUT …/jobs/{pk}/waiting`), so that the job's
   * submitter sees it. Only on a server whose capabilities offer it; elsewhere a no-op. Idempotent.
   */
  async reportWaiting(pk: number, reason: string, opts: CallOptions = {}): Promise<void> {
    if (!this.#shared.capabilities?.extensions.waiting_reasons) return;
    const path = WAITING_PATH.replace('{pk}', pkSegment(pk)).slice(1);
    await this.#transport.request({ method: 'PUT', path, json: { reason: reason.slice(0, 1000) }, idempotent: true, signal: opts.signal });
  }

  /** `POST /v1/hardware/list`. Idempotent. */
  async listHardware(opts: CallOptions = {}): Promise<HardwareJson[]> {
    return this.#transport.json({ method: 'POST', path: 'v1/hardware/list', json: {}, idempotent: true, signal: opts.signal });
  }

  // ── users ───────────────────────────────────────────────────────────────────────────────────

  /** `GET /v1/users/{username}` (yourself, or any as admin): the one user of its one-element array. */
  async getUser(username: string, opts: CallOptions = {}): Promise<UserJson> {
    const path = apiPath('v1', 'users', textSegment(username, 'username'));
    const body = await this.#transport.json<UserJson[] | UserJson>({ method: 'GET', path, idempotent: true, signal: opts.signal });
    const user = Array.isArray(body) ? body[0] : body;
    if (!user) throw new ClientError({ kind: 'not-found', method: 'GET', path: `/${path}`, status: 200, detail: `no user named ${JSON.stringify(username)}` });
    return user;
  }

  /**
   * `POST /v1/users/{username}/set-password` `{"password"}`: yourself, or anyone as admin. An
   * embedded-server route (the reference leaves passwords to Django's admin site: 404 there). Sent once.
   */
  async setPassword(username: string, password: string, opts: CallOptions = {}): Promise<UserJson> {
    const path = apiPath('v1', 'users', textSegment(username, 'username'), 'set-password');
    const body = await this.#transport.json<UserJson | UserJson[]>({ method: 'POST', path, json: { password }, idempotent: false, signal: opts.signal });
    const user = Array.isArray(body) ? body[0] : body;
    if (!user) throw new ClientError({ kind: 'protocol', method: 'POST', path: `/${path}`, status: 200, detail: 'no user in the answer' });
    return user;
  }

  /** `POST /v1/users/list` (admin; the embedded server's route, also in the reference's router). Idempotent. */
  async listUsers(filter: FilterSpec = {}, opts: CallOptions = {}): Promise<UserJson[]> {
    return this.#transport.json({ method: 'POST', path: 'v1/users/list', json: filter, idempotent: true, signal: opts.signal });
  }

  /** `POST /v1/users/create` (admin). Sent once. */
  async createUser(body: CreateUserBody, opts: CallOptions = {}): Promise<UserJson> {
    return this.#transport.json({ method: 'POST', path: 'v1/users/create', json: body, idempotent: false, signal: opts.signal });
  }

  /** Extension: `PUT /v1/users/{username}/worker` (admin): make a user a worker account, or not. */
  async setWorker(username: string, isWorker: boolean, opts: CallOptions = {}): Promise<UserJson> {
    const path = apiPath('v1', 'users', textSegment(username, 'username'), 'worker');
    return this.#transport.json({ method: 'PUT', path, json: { is_worker: isWorker }, idempotent: true, signal: opts.signal });
  }

  // ── web-socket ──────────────────────────────────────────────────────────────────────────────

  /**
   * Follow a job's notifications (`watch.ts`). Returns at once; connection failures and refusals go
   * to `options.onError`, and the watcher reconnects with back-off until `close()` (or `client.close()`).
   */
  watchJob(pk: number, onMessage: (message: JobNotification) => void, options: WatchOptions = {}): JobWatch {
    const watch = watchJob(this.#socketContext(), pk, onMessage, options);
    this.#watches.add(watch);
    return {
      close: () => {
        this.#watches.delete(watch);
        watch.close();
      },
      get connected() {
        return watch.connected;
      },
    };
  }

  // ── helpers ─────────────────────────────────────────────────────────────────────────────────

  /** What a web-socket of this client (job watch, log follow) needs. */
  #socketContext(): WatchContext {
    const o = this.options;
    const endpoints = this.#http.endpoints;
    return {
      // Read at each (re)connect: a watch reconnects to the address in use now.
      get serverUrl() {
        return endpoints.current;
      },
      failed: (url, failure) => void endpoints.failed(url, failure),
      token: () => this.auth.accessToken(this.#http.closingSignal),
      renew: (staleToken) => this.auth.recover(staleToken, this.#http.closingSignal),
      userAgent: o.userAgent,
      handshakeTimeoutMs: o.connectTimeoutMs + o.responseTimeoutMs,
      log: o.logger,
    };
  }

  #job(
    method: CallSpec['method'],
    pk: number,
    action: string | undefined,
    idempotent: boolean,
    opts: CallOptions,
    json?: unknown,
    op?: CallSpec['op'],
  ): Promise<JobJson> {
    const base = apiPath('v1', 'jobs', pkSegment(pk));
    const path = action === undefined ? base : `${base}/${action}`;
    const spec: CallSpec = { method, path, idempotent, signal: opts.signal };
    if (json !== undefined) spec.json = json;
    if (op !== undefined) spec.op = op;
    return this.#transport.json<JobJson>(spec);
  }

  #outputPath(pk: number, name: string, type: string): string {
    return apiPath('v1', 'jobs', pkSegment(pk), 'outputs', textSegment(name, 'output name'), textSegment(type, 'output type'));
  }
}

/**
 * Whether an answer has the shape every reader of a job relies on: an object with its pk and its
 * outputs. A server that answers anything else (a broken proxy, another API at that address) gets a
 * protocol error, not a TypeError deep in a command, or a job read as fields all undefined.
 */
function isJobLike(value: unknown): value is JobJson {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const v = value as Partial<Record<keyof JobJson, unknown>>;
  return Number.isSafeInteger(v.pk) && Array.isArray(v.outputs);
}

function notJobs(spec: Pick<CallSpec, 'method' | 'path'>, expected: string): ClientError {
  return new ClientError({ kind: 'protocol', method: spec.method, path: `/${spec.path}`, detail: `expected ${expected}, got something else` });
}

function isCapabilities(body: unknown): body is Capabilities {
  if (body === null || typeof body !== 'object') return false;
  const b = body as Record<string, unknown>;
  return b.server === 'ufdl-agent' && b.extensions !== null && typeof b.extensions === 'object';
}
