import type { FastifyInstance } from 'fastify';

export async function opsRoutes(_app: FastifyInstance): Promise<void> {}
