import type { FastifyInstance } from 'fastify';

export async function templatesRoutes(_app: FastifyInstance): Promise<void> {}
