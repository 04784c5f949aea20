/**
 * `/v1/jobs/…`: list (with the `X-UFDL-Wait` extension), update, delete, hard
 * delete, reinstate, the lifecycle actions, and a workflow's graph (`…/workflow`, an extension). The state machine itself lives in `store/jobs.ts`;
 * this file maps HTTP to it: permissions in the reference's order, bodies, status codes.
 *
 * `GET /v1/jobs/{pk}` is registered by `routes/ws.ts`, because the same route also upgrades to the
 * web-socket channel. Outputs under `/v1/jobs/{pk}/outputs/…` live in `routes/job-outputs.ts`.
 */
import { forbidden, parseWith } from '../../protocol/error-constructors.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { UfdlError } from '../../protocol/errors.js';
import { FilterSpecSchema } from '../../protocol/filter.js';
import { parseProgress } from '../../protocol/progress.js';
import { LIMIT_HEADER, WAIT_DECLINED_HEADER, WAIT_HEADER } from '../../protocol/wire.js';
import { requireAdmin, requireNode, requireUser } from '../identity.js';
import {
  abortJob,
  acquireJob,
  cancelJob,
  emitDeletion,
  finishJob,
  hardDeleteJob,
  notifyAcquirable,
  progressJob,
  reinstateJob,
  releaseJob,
  resetJob,
  softDeleteJob,
  startJob,
  updateJobDescription,
} from '../store/jobs.js';
import { prepareJobList } from '../store/lists.js';
import { holdOpen } from '../connection-limits.js';
import { workflowView } from '../store/workflow-view.js';
import { clientPresence, parseLimitHeader, parseWaitHeader, waitForJobs } from '../wait.js';
import { parsePk } from '../route-params.js';

/** A job detail path; pks are digits only, anything else is an unknown route (404), as in the reference. */
export const JOB_PATH = '/v1/jobs/:pk(^\\d+$)';

/**
 * The job pk from a route registered under {@link JOB_PATH}. Digits beyond the safe integers name no
 * job: a 404, as `parsePk` answers elsewhere, before any query (PostgreSQL refused such a number as
 * no `bigint`, 400, where SQLite found no job).
 */
export function jobPk(request: FastifyRequest): number {
  return parsePk((request.params as { pk: string }).pk);
}

/**
 * A JSON object body, or `{}` when there is none. Arrays, strings, numbers and `null` are a 400
 * (the reference answers 500 for some of them, bug B11).
 */
export function objectBody(body: unknown, what: string): Record<string, unknown> {
  if (body === undefined) return {};
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new UfdlError('UFDL_ERR_REQ_BAD_BODY', `The ${what} body must be a JSON object`);
  }
  return body as Record<string, unknown>;
}

const StartBodySchema = z.looseObject({
  // Required but unused by the reference; we accept it absent (be liberal).
  send_notification: z.string().optional(),
});

const FinishBodySchema = z.looseObject({
  success: z.boolean().optional(),
  send_notification: z.string().optional(),
  // `null` is refused like the reference does: absent means success.
  error: z.string({ error: 'must be a string (omit it for success)' }).optional(),
});

/** PUT/PATCH body: only `description` counts; strings and numbers are accepted (DRF coerces numbers). */
function descriptionOf(body: Record<string, unknown>): string | undefined {
  if (!Object.hasOwn(body, 'description')) return undefined;
  const value = body.description;
  if (value === null) throw new UfdlError('UFDL_ERR_REQ_BAD_BODY', 'description: This field may not be null.');
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw new UfdlError('UFDL_ERR_REQ_BAD_BODY', 'description: Not a valid string.');
}

/** Why a waiting list whose filter searches text was answered at once (`X-UFDL-Wait-Declined`). */
export const TEXT_SEARCH_NOT_HELD =
  'the filter searches text (contains, or a case-insensitive exact): such a list is not held waiting, since every new job would be searched for every waiting request';

/** How often the log may say that one user's waiting lists are answered at once (each is counted in the metrics). */
const DECLINED_LOG_INTERVAL_MS = 60_000;

export async function jobsRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.ufdl;
  const { db } = ctx;
  /** When the log last told of each user's declined waits: a user over its allowance may send thousands. */
  const declinesLogged = new Map<number, number>();

  app.post('/v1/jobs/list', async (request, reply) => {
    const user = requireUser(request);
    const spec = parseWith(FilterSpecSchema, request.body ?? {}, 'filter specification');
    const list = prepareJobList(db, spec);
    // In strict-reference mode the headers mean nothing, as on the reference.
    const waitMs = ctx.options.extensions ? parseWaitHeader(request.headers[WAIT_HEADER]) : 0;
    const limit = ctx.options.extensions ? parseLimitHeader(request.headers[LIMIT_HEADER]) : undefined;
    const node = request.node?.pk ?? null;
    // A node woken for a job that lists again without having taken it passed that job.
    if (node !== null) ctx.wakeups.nodeListed(node);
    if (list.searchesText) {
      // Not held waiting: the wake-up hub would ask, on the event loop, whether each new job matches
      // the search (a 1 MB description each time), for every such waiting request. Answered at
      // once, as a declined wait is.
      if (waitMs > 0) {
        void reply.header(WAIT_DECLINED_HEADER, TEXT_SEARCH_NOT_HELD);
        ctx.wakeups.countDeclined();
      }
      return list.search(ctx.searches, user.pk, limit);
    }
    const query = () => list.run(limit);
    if (waitMs === 0) return query();
    // Nothing moves on the connection while the server holds the poll: not an idle client.
    const restore = holdOpen(request.raw.socket, waitMs, ctx.options.idleTimeoutSeconds * 1000);
    try {
      return await waitForJobs(ctx.wakeups, list, query, {
        waitMs,
        node,
        user: user.pk,
        // Answered at once, as a list without the header would be; the header says why it did not wait.
        onDeclined: (why) => {
          void reply.header(WAIT_DECLINED_HEADER, why);
          const now = Date.now();
          if (now - (declinesLogged.get(user.pk) ?? 0) < DECLINED_LOG_INTERVAL_MS) return;
          declinesLogged.set(user.pk, now);
          ctx.log.info({ user: user.username, why }, 'a waiting job list was answered at once (more of this user\'s in the next minute are only counted)');
        },
        client: clientPresence(reply),
        // Jobs offered to another woken node are its to take; racing it for them costs two requests.
        worthAnswering: (jobs, wokenFor) => jobs.some((job) => job.pk === wokenFor || !ctx.wakeups.offeredToAnother(job.pk, node)),
        // Found on a recheck rather than woken for: the first job nobody is offered is this node's.
        claim: (jobs) => {
          const job = jobs.find((j) => !ctx.wakeups.offeredToAnother(j.pk, node));
          if (job) ctx.wakeups.claim(job.pk, node);
        },
      });
    } finally {
      restore();
    }
  });

  // Jobs are created from templates only.
  app.post('/v1/jobs/create', async (request) => {
    requireUser(request);
    throw forbidden('Jobs cannot be created directly; use POST /v1/job-templates/{pk}/create-job');
  });

  const update = async (request: FastifyRequest) => {
    requireAdmin(request);
    const description = descriptionOf(objectBody(request.body, 'update'));
    return updateJobDescription(db, jobPk(request), description);
  };
  app.put(JOB_PATH, update);
  app.patch(JOB_PATH, update);

  app.delete(JOB_PATH, async (request, reply) => {
    requireAdmin(request);
    const pk = jobPk(request);
    const deleted = softDeleteJob(db, pk);
    if (deleted) emitDeletion(ctx, pk, 'delete', deleted);
    return reply.code(204).send();
  });

  app.delete(`${JOB_PATH}/hard`, async (request) => {
    requireAdmin(request);
    const pk = jobPk(request);
    const { json, row } = hardDeleteJob(db, pk);
    emitDeletion(ctx, pk, 'hard-delete', row);
    return json;
  });

  app.delete(`${JOB_PATH}/reinstate`, async (request) => {
    requireAdmin(request);
    const pk = jobPk(request);
    const { json, row } = reinstateJob(db, pk);
    if (row) emitDeletion(ctx, pk, 'reinstate', row);
    // Listed again (lists leave soft-deleted jobs out): a waiting node may take it.
    notifyAcquirable(ctx, pk);
    return json;
  });

  // Extension: a workflow's parent with its graph and children, for live views and the dashboard.
  app.get(`${JOB_PATH}/workflow`, async (request) => {
    requireUser(request);
    return workflowView(db, jobPk(request));
  });

  // GET mutates here, as in the reference; fastify's automatic HEAD route runs it too.
  app.get(`${JOB_PATH}/acquire`, async (request) => {
    const node = requireNode(request);
    return acquireJob(ctx, jobPk(request), node.pk);
  });

  app.delete(`${JOB_PATH}/release`, async (request) => {
    const node = requireNode(request);
    return releaseJob(ctx, jobPk(request), node.pk);
  });

  app.post(`${JOB_PATH}/start`, async (request) => {
    const node = requireNode(request);
    parseWith(StartBodySchema, objectBody(request.body, 'start'), 'start body');
    return startJob(ctx, jobPk(request), node.pk);
  });

  app.post(`${JOB_PATH}/progress/:progress`, async (request) => {
    const raw = (request.params as { progress: string }).progress;
    // B10: any decimal in [0, 1] (the reference's regex accepts only `0.x`/`1.0`, and crashes on some).
    const progress = parseProgress(raw);
    if (progress === undefined) {
      throw new UfdlError('UFDL_ERR_REQ_BAD_PARAM', `Bad value for progress parameter 'progress': ${raw}\nprogress must be a decimal number in [0.0, 1.0]`);
    }
    const node = requireNode(request);
    // B11: any JSON object; it is forwarded to watchers as `transition_data`.
    const data = objectBody(request.body, 'progress');
    return progressJob(ctx, jobPk(request), node.pk, progress, data);
  });

  app.post(`${JOB_PATH}/finish`, async (request) => {
    const node = requireNode(request);
    const body = parseWith(FinishBodySchema, objectBody(request.body, 'finish'), 'finish body');
    return finishJob(ctx, jobPk(request), node.pk, body.error);
  });

  app.delete(`${JOB_PATH}/reset`, async (request) => {
    const node = requireNode(request);
    return resetJob(ctx, jobPk(request), node.pk);
  });

  app.delete(`${JOB_PATH}/abort`, async (request) => {
    requireAdmin(request);
    return abortJob(ctx, jobPk(request));
  });

  app.delete(`${JOB_PATH}/cancel`, async (request) => {
    const user = requireUser(request);
    return cancelJob(ctx, jobPk(request), user);
  });
}
