import type { FastifyInstance } from 'fastify';

export async function nodesRoutes(_app: FastifyInstance): Promise<void> {}
