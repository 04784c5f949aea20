/**
 * JSON shapes on the wire, as the reference server sends them (docs/COMPATIBILITY.md lists where ours
 * differ). Key order in the server's responses follows the reference; clients must not rely on it.
 * Timestamps are ISO-8601 strings (we emit UTC with `Z`).
 */

export type Pk = number;

export interface TypedValue {
  value: unknown;
  /** A type string such as `int`, `JSON` or `JobOutput<Model<…>>` (see `type-string.ts`). */
  type: string;
}

export interface JobOutputRef {
  pk: Pk;
  name: string;
  type: string;
}

/** A job as the reference sends it, keys in its order. `is_cancelled` is derived from the phase. */
export interface JobJson {
  pk: Pk;
  template: { pk: Pk; name: string; version: number };
  parent: Pk | null;
  start_time: string | null;
  end_time: string | null;
  error_reason: string | null;
  input_values: Record<string, TypedValue>;
  parameter_values: Record<string, TypedValue> | null;
  node: Pk | null;
  outputs: JobOutputRef[];
  description: string;
  is_cancelled: boolean;
  creator: Pk | null;
  creation_time: string;
  deletion_time: string | null;
  /**
   * Extension of this project's server: while the job waits (not acquired, not started), why nodes
   * that polled it did not take it, one entry per node. Absent otherwise, and from the reference.
   */
  waiting?: JobWaiting[];
  /**
   * Extension of this project's server: while the job runs (started, not ended), its last reported
   * progress, 0–1. Absent otherwise, and from the reference (whose progress is only in notifications).
   */
  progress?: number;
}

/** Why a node did not take a waiting job, as the node reported it. */
export interface JobWaiting {
  node: Pk;
  reason: string;
  /** When the node first gave this reason. */
  since: string;
}

/** The full job-output JSON returned by add/delete/info and `/v1/job-outputs`. */
export interface JobOutputJson {
  pk: Pk | null;
  job: Pk;
  name: string;
  type: string;
  creator: Pk | null;
  creation_time: string;
  deletion_time: string | null;
}

/** A node. */
export interface NodeJson {
  pk: Pk;
  ip: string;
  index: number;
  driver_version: string | null;
  hardware_generation: Pk | null;
  gpu_mem: number | null;
  cpu_mem: number;
  last_seen: string | null;
  current_job: Pk | null;
}

/** The body of node create / update (the reference worker sends all of these). */
export interface NodeSpec {
  ip: string;
  index: number;
  cpu_mem: number;
  driver_version?: string | null;
  hardware_generation?: Pk | null;
  gpu_mem?: number | null;
}

/** A hardware generation: a range of compute capabilities, min inclusive, max exclusive. */
export interface HardwareJson {
  pk: Pk;
  generation: string;
  min_compute_capability: number;
  max_compute_capability: number;
}

/** A template parameter as the template JSON shows it. */
export interface TemplateParameter {
  types: string[];
  help: string;
  default?: unknown;
  default_type?: string;
  const?: boolean;
}

/** Extension (the `Run` contract, docs/COMPATIBILITY.md): an input a `Run` template declares for itself. */
export interface TemplateInput {
  name: string;
  types: string[];
  help?: string;
}

/** The keys every template JSON has. */
export interface TemplateBaseJson {
  pk: Pk;
  name: string;
  version: number;
  description: string;
  scope: string;
  domain: string | null;
  /** The licence's pk, as the reference returns it (null only for a template whose licence is unknown here). */
  licence: Pk | null;
  creator: Pk | null;
  creation_time: string;
  deletion_time: string | null;
}

/** Template JSON (workable templates carry the `type`…`parameters` keys). */
export interface TemplateJson extends TemplateBaseJson {
  type: string;
  executor_class: string;
  required_packages: string;
  parameters: Record<string, TemplateParameter>;
  /** Extension: present for `Run` templates only; the reference never sends it. */
  inputs?: TemplateInput[];
}

/** How a workflow node overrides a parameter default of its template (the reference's ParameterOverrideSpec). */
export interface ParameterOverride {
  default?: unknown;
  default_type?: string;
  const?: boolean;
}

/** A node of a workflow's dependency graph, its template resolved at import (extension). */
export interface WorkflowNodeJson {
  template: { pk: Pk; name: string; version: number };
  parameter_default_overrides?: Record<string, ParameterOverride>;
}

/** An output of one node wired into an input of another (the reference's Dependency). */
export interface WorkflowDependencyJson {
  from_node: string;
  from_output: string;
  /** Extension: the output's type, as its template declares it. */
  from_output_type: string;
  to_node: string;
  to_input: string;
}

/** A meta-template's dependency graph: nodes by name, in the order of the import. */
export interface WorkflowGraphJson {
  nodes: Record<string, WorkflowNodeJson>;
  dependencies: WorkflowDependencyJson[];
}

/**
 * A meta-template (a workflow). The reference sends only the common keys; ours adds the workflow's
 * `parameters` and `inputs` (each child's, named `node:name`) and the `graph`.
 */
export interface MetaTemplateJson extends TemplateBaseJson {
  parameters?: Record<string, TemplateParameter>;
  inputs?: TemplateInput[];
  graph?: WorkflowGraphJson;
  /** Instead of `graph`, for a graph stored unreadable (by hand): what is wrong with it. */
  graph_error?: string;
}

/** Whether a template JSON is a meta-template: workable ones always carry `type` (here and on the reference). */
export function isMetaTemplateJson(template: TemplateBaseJson): template is MetaTemplateJson {
  return typeof (template as { type?: unknown }).type !== 'string';
}

/** One node of {@link WorkflowJson}: its job once created, and how far it got. */
export interface WorkflowNodeStateJson {
  name: string;
  template: { pk: Pk; name: string; version: number };
  /** The nodes whose outputs this one takes. */
  depends_on: string[];
  /** Null until the node's dependencies have finished and its job was created. */
  job: JobJson | null;
  /** 0 until created, the job's last progress while it runs, 1 once finished. */
  progress: number;
}

/** Extension: `GET /v1/jobs/{pk}/workflow` — a workflow's parent job with its graph and children. */
export interface WorkflowJson {
  job: JobJson;
  /** The mean of the nodes' progress. */
  progress: number;
  nodes: WorkflowNodeStateJson[];
  dependencies: WorkflowDependencyJson[];
  /**
   * Only for a graph stored unreadable (by hand): what is wrong with it. `nodes` are then the jobs
   * the run made, `dependencies` empty.
   */
  graph_error?: string;
}

/** A licence of `/v1/licences` (the reference's registry). */
export interface LicenceJson {
  pk: Pk;
  name: string;
  url: string;
  permissions: string[];
  conditions: string[];
  limitations: string[];
  domains: string[];
}

/** The one-element array of `GET /v1/users/{username}`. */
export interface UserJson {
  username: string;
  pk: Pk;
  last_login: string | null;
  is_superuser: boolean;
  first_name: string;
  last_name: string;
  email: string;
  is_staff: boolean;
  is_active: boolean;
  date_joined: string;
  /** Extension: shown when the server limits node actions to worker accounts. */
  is_worker?: boolean;
}

export type Transition =
  | 'acquire'
  | 'release'
  | 'start'
  | 'progress'
  | 'finish'
  | 'error'
  | 'reset'
  | 'abort'
  | 'cancel';

/** One web-socket frame. `node` only when the job has one; `error` only when ERRORED. */
export interface JobNotification {
  transition: Transition;
  description: string;
  pk: Pk;
  progress: number;
  cancelled: boolean;
  node?: Pk;
  error?: string;
  transition_data: Record<string, unknown>;
}

/** Body of `POST /v1/jobs/{pk}/finish`. `success` and `send_notification` are ignored by the server. */
export interface FinishBody {
  success?: boolean;
  send_notification?: string;
  error?: string;
}

/**
 * Capability discovery (docs/ARCHITECTURE.md, "Extensions"): `GET /v1/ufdl-agent/capabilities`. The reference answers 404, and
 * a client that gets 404 assumes no extension.
 */
export interface Capabilities {
  server: 'ufdl-agent';
  version: string;
  extensions: {
    /**
     * `X-UFDL-Wait` on `POST /v1/jobs/list`, with its upper bound. `pk_exclusions`: waiting filters
     * that differ only in `pk ≠ n` terms cost one query a job between them (absent on older servers,
     * which ask each such filter: a node's skip list is then better left out of its poll).
     */
    wait: { max_seconds: number; pk_exclusions?: boolean } | null;
    /** Lost-node recovery: jobs of nodes unseen for this long are aborted. */
    lost_node: { lost_after_seconds: number } | null;
    /** Web-socket watching of any job, authenticated by `?token=` or the Authorization header. */
    websocket: { auth: boolean };
    /**
     * Live job logs (`protocol/live-log.ts`): the largest cap a log may be begun with and the largest
     * append body. Absent on servers older than the extension.
     */
    live_logs?: { max_bytes: number; append_max_bytes: number } | null;
    /** The web dashboard's path on this server. */
    dashboard?: { path: string } | null;
    /** `PUT …/jobs/{pk}/waiting` takes a node's reason for not running a job (absent: not offered). */
    waiting_reasons?: { path: string };
  };
  limits: { max_output_bytes: number; max_body_bytes: number };
}

export const CAPABILITIES_PATH = '/v1/ufdl-agent/capabilities';
/** Where a node says why it does not run a job: `PUT` with `{"reason": …}` and its `Node-Id`. */
export const WAITING_PATH = '/v1/ufdl-agent/jobs/{pk}/waiting';
export const WAIT_HEADER = 'x-ufdl-wait';
/**
 * On the answer to a list request that asked to wait and was answered at once instead, because its
 * user already waits on as many distinct filters as the server allows: why, in a sentence.
 */
export const WAIT_DECLINED_HEADER = 'x-ufdl-wait-declined';
/**
 * `X-UFDL-Limit: <n>` on `POST …/list`: answer with the first `n` items of the result only. An
 * extension the reference ignores (it answers with every item), so clients cut the answer too.
 */
export const LIMIT_HEADER = 'x-ufdl-limit';
export const MAX_WAIT_SECONDS = 60;
/**
 * `X-UFDL-Output-SHA256: <hex>` on the answer to an output upload: the SHA-256 of the bytes the server
 * stored, for the uploader to compare with what it sent. An extension; the reference does not send it.
 */
export const OUTPUT_SHA256_HEADER = 'x-ufdl-output-sha256';
