/**
 * Operations routes: liveness, readiness, Prometheus metrics, and capability discovery. None needs a
 * token — probes and scrapers carry none — except `/metrics` when `serve.metrics_token` is set: the
 * counts of requests, jobs and nodes say something about a site, and an operator may keep them in. Capability
 * discovery is off in strict-reference mode, where it answers the router's 404 as the reference does.
 */
import { forbidden } from '../../protocol/error-constructors.js';
import type { FastifyInstance } from 'fastify';
import { UfdlError } from '../../protocol/errors.js';
import { CAPABILITIES_PATH, MAX_WAIT_SECONDS, WAITING_PATH, type Capabilities } from '../../protocol/wire.js';
import { MAX_APPEND_BYTES } from '../../protocol/live-log.js';
import { packageVersion } from '../../package-files.js';
import { requireUser } from '../identity.js';
import { serverMetrics } from '../metrics.js';
import { DASHBOARD_PATH } from './dashboard.js';

export async function opsRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.ufdl;
  const metrics = serverMetrics(ctx);
  const version = packageVersion();

  app.get('/livez', async () => ({ status: 'ok' }));

  // Ready = the database answers and the server is not shutting down (load balancers drain first).
  app.get('/readyz', async () => {
    if (ctx.closing.aborted) throw new UfdlError('UFDL_ERR_SERVER_UNAVAILABLE', 'Not ready: the server is shutting down');
    try {
      ctx.db.prepare('SELECT 1').get();
    } catch (err) {
      throw new UfdlError('UFDL_ERR_SERVER_UNAVAILABLE', `Not ready: the database does not answer (${(err as Error).message})`, { cause: err });
    }
    return { status: 'ready' };
  });

  // Open unless a metrics secret is configured; then the scraper sends it, or an admin a token.
  app.get('/metrics', { config: { metricsSecret: true } }, async (request, reply) => {
    if (ctx.options.metricsToken !== undefined && !request.metricsScraper) {
      const user = requireUser(request);
      if (!user.is_staff) throw forbidden('/metrics needs the metrics secret (serve.metrics_token) or an admin token');
    }
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

  if (ctx.options.extensions) {
    app.get(CAPABILITIES_PATH, async (): Promise<Capabilities> => ({
      server: 'ufdl-agent',
      version,
      extensions: {
        wait: { max_seconds: MAX_WAIT_SECONDS, pk_exclusions: true },
        lost_node: { lost_after_seconds: ctx.options.lostAfterSeconds },
        websocket: { auth: !ctx.options.allowAnonymousWebsocket },
        live_logs: { max_bytes: ctx.options.maxLiveLogBytes, append_max_bytes: MAX_APPEND_BYTES },
        dashboard: { path: DASHBOARD_PATH },
        waiting_reasons: { path: WAITING_PATH },
      },
      limits: { max_output_bytes: ctx.options.maxOutputBytes, max_body_bytes: ctx.options.maxBodyBytes },
    }));
  }
}
