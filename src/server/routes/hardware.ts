import type { FastifyInstance } from 'fastify';

export async function hardwareRoutes(_app: FastifyInstance): Promise<void> {}
