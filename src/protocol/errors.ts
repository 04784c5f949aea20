/**
 * The one registry of error codes shared by the server (which maps a code to an HTTP status and a
 * `{"detail": …}` body) and the client/agent (which branch on `code`, never on message text).
 *
 * Codes are `UFDL_ERR_<AREA>_<WHAT>`. A code is never reused for a different meaning; add a new one.
 * `docs/ERRORS.md` lists every code (a test checks that it does).
 */
export const ERROR_CODES = {
  // Request shape
  UFDL_ERR_REQ_BAD_JSON: { status: 400, doc: 'The body is not valid JSON.' },
  UFDL_ERR_REQ_BAD_BODY: { status: 400, doc: 'The body does not match the schema of the route, or a string or key in a JSON body holds a NUL character (`\\u0000`) or a lone UTF-16 surrogate (`\\ud800`), which no store keeps as sent.' },
  UFDL_ERR_REQ_BAD_PARAM: { status: 400, doc: 'A URL parameter or query value is malformed or out of range.' },
  UFDL_ERR_REQ_TOO_LARGE: { status: 413, doc: 'The body is larger than the configured limit.' },
  UFDL_ERR_REQ_OVER_LIMIT: {
    status: 400,
    doc: 'A JSON body nested deeper than 64 levels, or a list filter over its limits (500 expressions, 100 `order_by` entries, strings of 10,000 characters); the detail names the limit.',
  },
  UFDL_ERR_REQ_UNSUPPORTED_MEDIA: { status: 415, doc: 'The Content-Type is not accepted by this route.' },
  UFDL_ERR_REQ_NOT_ACCEPTABLE: { status: 406, doc: 'The Accept header cannot be satisfied.' },
  UFDL_ERR_REQ_EXPECTATION: { status: 417, doc: 'The `Expect` header asks for something other than `100-continue`, the one expectation HTTP/1.1 defines.' },
  UFDL_ERR_REQ_METHOD: { status: 405, doc: 'The route exists but not for this HTTP method (reference: 500, bug B1).' },
  UFDL_ERR_REQ_NOT_FOUND: { status: 404, doc: 'No route, or no object with that primary key.' },
  UFDL_ERR_REQ_TIMEOUT: { status: 408, doc: "The request's headers did not arrive within `serve.headers_timeout`." },
  UFDL_ERR_REQ_TOO_MANY_CONNECTIONS: {
    status: 429,
    doc: 'The client address (IPv6: its /64) already holds `serve.max_connections_per_address` connections; the connection is answered and closed.',
  },
  UFDL_ERR_REQ_FILTER_FIELD: { status: 400, doc: 'A list filter or order_by names a field that does not exist (reference: 500, bug B14).' },
  UFDL_ERR_REQ_FILTER_VALUE: { status: 400, doc: 'A list filter compares a number field with text that is no number (`"abc"`, `"infinity"`).' },
  UFDL_ERR_REQ_SEARCH_BUSY: {
    status: 429,
    doc: 'A list whose filter searches text (`contains`, or a case-insensitive `exact`) while a search of the same user is still running; send it again once that one is answered.',
  },

  // Authentication and permission
  UFDL_ERR_AUTH_MISSING: { status: 401, doc: 'No credentials were sent to a route that needs them.' },
  UFDL_ERR_AUTH_BAD_TOKEN: { status: 401, doc: 'The token is malformed, has a bad signature, or has expired.' },
  UFDL_ERR_AUTH_BAD_CREDENTIALS: { status: 401, doc: 'Unknown user, wrong password, or inactive account.' },
  UFDL_ERR_AUTH_FORBIDDEN: { status: 403, doc: 'Authenticated, but not allowed to perform this action.' },
  UFDL_ERR_AUTH_BAD_NODE_ID: { status: 400, doc: 'The Node-Id header is not an integer or names no node.' },
  UFDL_ERR_AUTH_THROTTLED: {
    status: 429,
    doc: 'Too many failed logins for this user name or from this address; the detail and `Retry-After` say how long to wait.',
  },
  UFDL_ERR_AUTH_NOT_WORKER: {
    status: 403,
    doc: 'With `serve.node_actions = "workers"`, only worker accounts (and admins) may register or act as nodes.',
  },
  UFDL_ERR_AUTH_NOT_YOUR_NODE: { status: 403, doc: 'The Node-Id names a node that another user registered (bug B13).' },

  // Jobs
  UFDL_ERR_JOB_ACQUIRED: { status: 406, doc: 'Another node has already acquired the job.' },
  UFDL_ERR_JOB_PHASE: { status: 406, doc: 'Illegal phase transition for the job in its current phase.' },
  UFDL_ERR_JOB_NODE_BUSY: { status: 406, doc: 'The node is already working another job.' },
  UFDL_ERR_JOB_NOT_STARTED: { status: 417, doc: 'An output was added to a job that has not started.' },
  UFDL_ERR_JOB_FINISHED: { status: 406, doc: 'An output was added to a finished job.' },
  UFDL_ERR_JOB_NOT_WORKING: { status: 406, doc: 'The node is not working this job (reference: 500 assertion, bug B2).' },

  // Outputs
  UFDL_ERR_OUTPUT_EXISTS: { status: 400, doc: 'The job already has an active output with this name and type.' },
  UFDL_ERR_OUTPUT_UNKNOWN: { status: 400, doc: 'The job has no output with this name and type.' },
  UFDL_ERR_OUTPUT_BAD_NAME: { status: 400, doc: 'An output name or type is empty, too long, or contains `/`, NUL or is `.`/`..`.' },
  UFDL_ERR_OUTPUT_NO_FILENAME: { status: 400, doc: 'The upload lacks a Content-Disposition header with a filename.' },
  UFDL_ERR_OUTPUT_TOO_LARGE: { status: 413, doc: 'The output is larger than the configured maximum.' },

  // Live job logs (extension)
  UFDL_ERR_LOG_GAP: { status: 416, doc: 'A live-log append begins beyond the end of the log; the body states the length to resend from.' },

  // Templates and job creation
  UFDL_ERR_TEMPLATE_BAD: { status: 400, doc: 'The imported template is invalid, a workflow stored without the import bounds exceeds one or its stored graph breaks the import rules or cannot be read (at create-job, export), or a type string stored with a template can no longer be read.' },
  UFDL_ERR_TEMPLATE_IN_USE: { status: 400, doc: 'A template cannot be hard-deleted while jobs or workflows refer to it.' },
  UFDL_ERR_TEMPLATE_ACTIVE_VERSION: {
    status: 400,
    doc: 'A template cannot be reinstated while another template of the same name and version is active; the detail names it.',
  },
  UFDL_ERR_TEMPLATE_UNSAFE: {
    status: 400,
    doc: 'A `ufdl_agent.*` template places `${name}` where a value could run as code (single quotes, `eval`, `sh -c`, …).',
  },
  UFDL_ERR_TEMPLATE_KIND: { status: 400, doc: 'The route needs a workable template, and this one is a meta-template (a workflow), or the other way round.' },
  UFDL_ERR_TYPE_PARSE: { status: 400, doc: 'A type string could not be parsed.' },
  UFDL_ERR_CREATE_MISSING_PARAM: { status: 400, doc: 'A required parameter has no value and no default.' },
  UFDL_ERR_CREATE_BAD_VALUE: { status: 400, doc: 'A value does not match its declared simple type (str, int, float, bool, JSON).' },
  UFDL_ERR_CREATE_INVALID_INPUT: { status: 406, doc: 'An input or parameter is missing, of a disallowed type, const, or unknown.' },

  // Nodes and users
  UFDL_ERR_NODE_DUPLICATE: { status: 400, doc: 'A node with this ip and index already exists.' },
  UFDL_ERR_USER_EXISTS: { status: 400, doc: 'A user with this name already exists.' },
  UFDL_ERR_HARDWARE_RANGE: { status: 400, doc: 'No hardware generation covers the given compute capability.' },

  // Server-side conditions that are not the client's fault
  UFDL_ERR_SERVER_UNAVAILABLE: { status: 503, doc: 'The server is shutting down or not ready.' },
  UFDL_ERR_SERVER_TOO_MANY_CONNECTIONS: { status: 503, doc: 'The server holds `serve.max_connections` connections; retry shortly.' },
  UFDL_ERR_SERVER_NOT_DURABLE: { status: 503, doc: 'A disk sync of the database failed: the outcome of the request is unknown; retry.' },
  UFDL_ERR_SERVER_DATABASE: { status: 503, doc: 'The server could not reach its PostgreSQL database, or a statement timed out: the outcome of the request is unknown; retry.' },
  UFDL_ERR_SERVER_SEARCH_TIMEOUT: {
    status: 503,
    doc: 'A list whose filter searches text took longer than `serve.search_time_limit` (waiting for other searches included) and was abandoned; narrow the filter or retry later.',
  },
  UFDL_ERR_SERVER_SEARCH_FAILED: { status: 503, doc: "The thread that runs the lists whose filter searches text stopped during the search, or could not be started; the next search starts a new one: retry." },
  UFDL_ERR_SERVER_INTERNAL: { status: 500, doc: 'A bug. Never expected; the log has the stack trace.' },
} as const satisfies Record<string, { status: number; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error that the server turns into `{"detail": message}` with the code's HTTP status. */
export class UfdlError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** Extra JSON fields sent next to `detail` (e.g. simplejwt's `code: "token_not_valid"`). */
  readonly extra: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, detail: string, options?: { cause?: unknown; extra?: Record<string, unknown> }) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UfdlError';
    this.code = code;
    this.statusCode = ERROR_CODES[code].status;
    this.extra = options?.extra;
  }
}

export function isUfdlError(err: unknown): err is UfdlError {
  return err instanceof UfdlError;
}
