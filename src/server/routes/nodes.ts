/**
 * Worker nodes: list, create (201), retrieve, update, partial update, delete
 * and ping. Deviation (docs/COMPATIBILITY.md, bug B13): a node records the user who registered it, and the identity
 * hook only accepts a `Node-Id` from that user (or an admin).
 */
import { forbidden, notFound, parseWith } from '../../protocol/error-constructors.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FilterSpecSchema } from '../../protocol/filter.js';
import type { NodeJson } from '../../protocol/wire.js';
import type { NodeRow } from '../context.js';
import { bodyOrEmpty } from '../field-errors.js';
import { parseNodeBody } from './node-body.js';
import { isAdmin, requireNode, requireUser, requireWorker } from '../identity.js';
import { parsePk } from '../route-params.js';
import { compileFilter } from '../store/filter-sql.js';
import {
  NODE_FIELDS,
  createNode,
  deleteNodeIfUnreferenced,
  getNode,
  nodeJson,
  hardwareExists,
  updateNode,
  type NodeFields,
} from '../store/nodes.js';

type PkRequest = FastifyRequest<{ Params: { pk: string } }>;

export async function nodesRoutes(app: FastifyInstance): Promise<void> {
  const { db } = app.ufdl;

  /** Authenticated, the node exists (404 first, as the reference), and the caller is an admin or that node. */
  const nodeForChange = (request: PkRequest): NodeRow => {
    requireUser(request);
    const node = getNode(db, parsePk(request.params.pk));
    if (!node) throw notFound();
    if (!isAdmin(request) && request.node?.pk !== node.pk) {
      throw forbidden('Only an admin, or the node itself (by its Node-Id), may change or delete a node.');
    }
    return node;
  };

  app.post('/v1/nodes/list', async (request): Promise<NodeJson[]> => {
    requireUser(request);
    const spec = parseWith(FilterSpecSchema, bodyOrEmpty(request.body), 'filter');
    const { where, params, orderBy } = compileFilter(spec, NODE_FIELDS, { defaultOrder: 'nodes.pk ASC' });
    const rows = db.prepare(`SELECT * FROM nodes WHERE ${where} ORDER BY ${orderBy}`).all(...params) as NodeRow[];
    return rows.map(nodeJson);
  });

  app.post('/v1/nodes/create', async (request, reply) => {
    const user = requireUser(request);
    requireWorker(app, user);
    const fields = parseNodeBody(request.body, false, (pk) => hardwareExists(db, pk)) as Pick<NodeFields, 'ip' | 'index' | 'cpu_mem'> & Partial<NodeFields>;
    const node = createNode(
      db,
      { driver_version: null, hardware_generation: null, gpu_mem: null, ...fields },
      user.pk,
    );
    return reply.code(201).send(nodeJson(node));
  });

  // A heartbeat: the identity hook has already updated last_seen. Empty body, no content type.
  app.get('/v1/nodes/ping', async (request, reply) => {
    requireNode(request);
    return reply.code(200).send();
  });

  app.get<{ Params: { pk: string } }>('/v1/nodes/:pk', async (request): Promise<NodeJson> => {
    requireUser(request);
    const node = getNode(db, parsePk(request.params.pk));
    if (!node) throw notFound();
    return nodeJson(node);
  });

  for (const method of ['PUT', 'PATCH'] as const) {
    app.route<{ Params: { pk: string } }>({
      method,
      url: '/v1/nodes/:pk',
      handler: async (request): Promise<NodeJson> => {
        const node = nodeForChange(request);
        const fields = parseNodeBody(request.body, method === 'PATCH', (pk) => hardwareExists(db, pk));
        return nodeJson(updateNode(db, node.pk, fields));
      },
    });
  }

  app.delete<{ Params: { pk: string } }>('/v1/nodes/:pk', async (request, reply) => {
    const node = nodeForChange(request);
    const removed = deleteNodeIfUnreferenced(db, node.pk);
    if (!removed) request.log.info({ node: node.pk }, 'node not deleted: jobs refer to it');
    return reply.code(204).send();
  });
}
