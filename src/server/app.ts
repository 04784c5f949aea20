/**
 * `buildApp()` assembles the embedded server: services first (database, blobs, hub, tokens), then the
 * identity hook, then one route plugin per resource (docs/ARCHITECTURE.md, Conventions 9). `listen` is the caller's business
 * (`server/serve.ts`), so tests can use `inject()` or port 0.
 */
import { join } from 'node:path';
import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { TokenService } from './auth.js';
import { BlobStore } from './blobs.js';
import type { ServerContext } from './context.js';
import { registerDurableReplies } from './durable-replies.js';
import { answerClientErrors, limitConnections } from './connection-limits.js';
import { websocketErrorHandler } from './ws-connections.js';
import { answerBadHandshakesWithJson, answerUnmetExpectations, frameworkErrors, registerErrorHandling } from './http-errors.js';
import { registerIdentityHook } from './identity.js';
import { checkJsonBodies } from './json-depth.js';
import { endConnectionsOnceClosing } from './linger.js';
import { registerMetricsHooks } from './metrics.js';
import { NotifyHub } from './notify-hub.js';
import { resolveServerOptions, type ResolvedServerOptions, type ServerOptions } from './options.js';
import { authRoutes } from './routes/auth.js';
import { hardwareRoutes } from './routes/hardware.js';
import { jobOutputsRoutes } from './routes/job-outputs.js';
import { jobsRoutes } from './routes/jobs.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { liveLogRoutes } from './routes/live-log.js';
import { LiveLogStore } from './live-log/store.js';
import { nodesRoutes } from './routes/nodes.js';
import { opsRoutes } from './routes/ops.js';
import { registriesRoutes } from './routes/registries.js';
import { templatesRoutes } from './routes/templates.js';
import { usersRoutes } from './routes/users.js';
import { waitingRoutes } from './routes/waiting.js';
import { chooseProtocol, websocketRoutes } from './routes/ws.js';
import { getJobRow, offerJobJsonExtensions } from './store/job-json.js';
import { openStore } from './store/open-store.js';
import { startReplication } from './replication.js';
import { ensureSecret, seedDatabase } from './store/seed.js';
import { activeVersionClashes } from './store/templates.js';
import { startSweeper } from './sweeper.js';
import { WakeHub } from './wake-up/wake-hub.js';
import { makeDirs } from '../make-dirs.js';

export interface BuiltServer {
  app: FastifyInstance;
  options: ResolvedServerOptions;
  /** Where the generated admin password was written, when it was generated on this start. */
  adminPasswordFile: string | undefined;
}

export async function buildApp(input: ServerOptions, logger?: Logger): Promise<BuiltServer> {
  const options = resolveServerOptions(input);
  await makeDirs(options.dataDir, 0o750);
  const log = logger ?? pino({ level: options.logLevel === false ? 'silent' : options.logLevel, name: 'ufdl-server' });

  const store = await openStore(options, log);
  const { db } = store;
  const blobs = new BlobStore(join(options.dataDir, 'outputs'));
  await blobs.init();
  const { adminPasswordFile } = await seedDatabase(db, options, log);
  for (const clash of activeVersionClashes(db)) {
    log.warn(
      { template: clash.name, version: clash.version, pks: clash.pks },
      `templates ${clash.pks.join(', ')} are all the active '${clash.name}' v${clash.version}, and a lookup by that name and version may find either: soft-delete all but one (DELETE /v1/job-templates/{pk})`,
    );
  }
  const tokens = new TokenService(ensureSecret(db), {
    accessSeconds: options.accessTokenSeconds,
    refreshSeconds: options.refreshTokenSeconds,
  });
  // Group commit: the migration and the seed are made durable before the first request is taken.
  await store.barrier.syncAfterCommit();
  const closing = new AbortController();
  const hub = new NotifyHub();
  const wakeups = new WakeHub({
    onError: (err) => log.error({ err }, 'a waiting list filter could not be checked against a job'),
    maxBasesPerUser: options.maxWaitFiltersPerUser,
  });
  // The wake-up hub hears of jobs only through the hub's events, as it would from another replica.
  hub.on('acquirable', (pk) => wakeups.jobAcquirable(pk));
  hub.on('transition', (pk, message) => {
    if (message.transition === 'acquire' && message.node !== undefined) wakeups.jobAcquired(pk, message.node);
  });
  // Jobs made acquirable on other replicas while this one did not hear them: every waiter looks again.
  hub.on('resync', () => wakeups.recheck());
  const ctx: ServerContext = { db, options, tokens, hub, wakeups, durable: store.barrier, searches: store.searches, blobs, log, closing: closing.signal };

  const app = Fastify({
    loggerInstance: log as unknown as FastifyBaseLogger,
    bodyLimit: options.maxBodyBytes,
    // Request lines would drown the log of a busy node; errors are logged by http-errors.ts.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request: building one (pino's child, with the redaction set-up) cost a few
    // per cent of a small request's CPU, for the request id of the rare request-scoped log line,
    // which names the method and URL instead.
    childLoggerFactory: (logger) => logger,
    // maxParamLength: output names may be 200 characters (604 when looked up on a workflow's parent,
    // which holds its children's outputs as `node:name`) and type strings are longer still once
    // percent-encoded (`JobOutput<Model<Domain<'…'>, …>>`); find-my-way's default of 100 gives 414.
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: false, maxParamLength: 4096 },
    // Shut down promptly: in-flight requests finish, idle keep-alive sockets close.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // Bad percent-encoding and over-long path parameters: JSON {"detail"} too (http-errors.ts).
    frameworkErrors,
    clientErrorHandler: answerClientErrors,
  });
  limitConnections(app.server, {
    headersTimeoutMs: options.headersTimeoutSeconds * 1000,
    idleTimeoutMs: options.idleTimeoutSeconds * 1000,
    maxConnectionsPerAddress: options.maxConnectionsPerAddress,
    maxConnections: options.maxConnections,
  });
  answerUnmetExpectations(app.server);
  app.decorate('ufdl', ctx);
  registerErrorHandling(app);
  registerDurableReplies(app, store.barrier);
  // Before the identity hook: the plugin's onRequest hook marks upgrade requests, and only marked
  // ones get their socket closed after a refusal; a bad token would otherwise leak the socket.
  await app.register(websocket, { options: { maxPayload: 64 * 1024, handleProtocols: chooseProtocol }, errorHandler: websocketErrorHandler });
  answerBadHandshakesWithJson(app);
  checkJsonBodies(app);
  registerIdentityHook(app);
  registerMetricsHooks(app);
  endConnectionsOnceClosing(app);

  await app.register(opsRoutes);
  await app.register(authRoutes);
  await app.register(usersRoutes);
  await app.register(nodesRoutes);
  await app.register(hardwareRoutes);
  await app.register(registriesRoutes);
  await app.register(templatesRoutes);
  await app.register(jobsRoutes);
  await app.register(jobOutputsRoutes);
  await app.register(websocketRoutes);
  if (options.extensions) {
    offerJobJsonExtensions(db);
    // Live logs and the dashboard are extensions: strict-reference mode serves neither.
    const liveLogs = new LiveLogStore(join(options.dataDir, 'live-logs'), { maxBytesLimit: options.maxLiveLogBytes });
    await liveLogs.init((pk) => getJobRow(db, pk) !== undefined);
    app.decorate('liveLogs', liveLogs);
    await app.register(liveLogRoutes);
    await app.register(dashboardRoutes);
    await app.register(waitingRoutes);
  }

  const replication = store.pool ? await startReplication(store.pool, hub, log) : undefined;
  const stopSweeper = options.extensions ? startSweeper(ctx, replication?.leadsSweep) : () => {};
  app.addHook('preClose', async () => {
    closing.abort();
    // Waiting list requests are answered now, so the server does not wait for their time to run out.
    wakeups.close();
    stopSweeper();
  });
  app.addHook('onClose', async () => {
    await replication?.close();
    await store.close();
  });
  return { app, options, adminPasswordFile };
}
