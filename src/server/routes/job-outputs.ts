import type { FastifyInstance } from 'fastify';

export async function jobOutputsRoutes(_app: FastifyInstance): Promise<void> {}
