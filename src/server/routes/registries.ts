import type { FastifyInstance } from 'fastify';

export async function registriesRoutes(_app: FastifyInstance): Promise<void> {}
