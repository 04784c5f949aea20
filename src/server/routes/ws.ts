import type { FastifyInstance } from 'fastify';

export async function websocketRoutes(_app: FastifyInstance): Promise<void> {}
