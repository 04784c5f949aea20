/**
 * `PUT /v1/ufdl-agent/jobs/{pk}/waiting` (an extension): a node says why it does not run a job that
 * waits, `{"reason": "…"}`, with its `Node-Id`. The job's JSON shows the reasons while it waits
 * (`waiting`), so that its submitter sees why nothing happens. A report about a job that no longer
 * waits changes nothing. 204 either way.
 */
import { parseWith } from '../../protocol/error-constructors.js';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { UfdlError } from '../../protocol/errors.js';
import { WAITING_PATH } from '../../protocol/wire.js';
import { requireNode } from '../identity.js';
import { isWaiting, requireJobRow } from '../store/job-json.js';
import { MAX_WAIT_REASON_LENGTH, recordWaiting } from '../store/job-waits.js';
import { jobPk } from './jobs.js';

const WaitingSchema = z.strictObject({ reason: z.string().min(1).max(MAX_WAIT_REASON_LENGTH) });

export async function waitingRoutes(app: FastifyInstance): Promise<void> {
  const { db } = app.ufdl;
  app.put(WAITING_PATH.replace('{pk}', ':pk(^\\d+$)'), async (request, reply) => {
    const node = requireNode(request);
    const { reason } = parseWith(WaitingSchema, request.body, 'body');
    const row = requireJobRow(db, jobPk(request));
    if (isWaiting(row) && !recordWaiting(db, row.pk, node.pk, reason)) {
      throw new UfdlError('UFDL_ERR_AUTH_BAD_NODE_ID', `Bad Node-Id header '${node.pk}': No node with this primary-key`);
    }
    return reply.code(204).send();
  });
}
