import type { FastifyInstance } from 'fastify';

export async function jobsRoutes(_app: FastifyInstance): Promise<void> {}
