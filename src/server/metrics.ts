/**
 * Prometheus metrics of the embedded server (docs/OPERATIONS.md), on a `Registry` of each server's
 * own: tests build many apps in one process, and the global registry would mix (and reject) them.
 *
 * Request counts come from an `onResponse` hook that must sit on the root instance to see every
 * route, so `buildApp` calls {@link registerMetricsHooks}; job and node gauges are computed from the
 * database when scraped, so they cannot drift from the truth.
 */
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Phase } from '../protocol/phase.js';
import type { ServerContext } from './context.js';
import { cachedStatement } from './store/db.js';

export interface ServerMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpSeconds: Histogram<'method' | 'route'>;
}

const PHASES: readonly Phase[] = ['CREATED', 'STARTED', 'FINISHED', 'ERRORED', 'CANCELLED'];

// The phase rule of protocol/phase.ts in SQL, with bug B4's cancelled-before-start as CANCELLED, for
// the jobs that have not ended (few, read through the partial index jobs_unended).
export const UNENDED_PHASES_SQL = `
  SELECT CASE
    WHEN cancelled_unstarted = 1 THEN 'CANCELLED'
    WHEN start_time IS NULL THEN 'CREATED'
    WHEN error_reason IS NULL THEN 'STARTED'
    ELSE 'CANCELLED' END AS phase,
    COUNT(*) AS n
  FROM jobs WHERE end_time IS NULL AND deletion_time IS NULL GROUP BY phase`;
// Ended with an error (through jobs_with_error); every other ended job finished. Counting those
// directly would read the whole history (a second for a million jobs) at every scrape, while the
// count of all rows is nearly free and deleted ones have their own index.
export const ERRORED_SQL = 'SELECT COUNT(*) AS n FROM jobs WHERE error_reason IS NOT NULL AND end_time IS NOT NULL AND deletion_time IS NULL';
export const ALL_SQL = 'SELECT COUNT(*) AS n FROM jobs';
export const DELETED_SQL = 'SELECT COUNT(*) AS n FROM jobs WHERE deletion_time IS NOT NULL';

/** Jobs that are not soft-deleted, by phase. */
function jobsByPhase(db: ServerContext['db']): Map<Phase, number> {
  const count = (sql: string) => (cachedStatement(db, sql).get() as { n: number }).n;
  const counts = new Map((cachedStatement(db, UNENDED_PHASES_SQL).all() as Array<{ phase: Phase; n: number }>).map((r) => [r.phase, r.n]));
  const errored = count(ERRORED_SQL);
  let unended = 0;
  for (const n of counts.values()) unended += n;
  counts.set('ERRORED', errored);
  counts.set('FINISHED', count(ALL_SQL) - count(DELETED_SQL) - unended - errored);
  return counts;
}

const byContext = new WeakMap<ServerContext, ServerMetrics>();
const hooked = new WeakSet<ServerContext>();

/** The metrics of the server whose services are `ctx`, created on first use. */
export function serverMetrics(ctx: ServerContext): ServerMetrics {
  const existing = byContext.get(ctx);
  if (existing) return existing;
  const registry = new Registry();
  const registers = [registry];
  const startedAt = Date.now();
  const { db, log } = ctx;

  /** Read gauges from the database; a failure (database closing) keeps the last values. */
  const safely = (what: string, read: () => void) => {
    try {
      if (db.open) read();
    } catch (err) {
      log.warn({ err }, `metrics: could not read ${what}`);
    }
  };

  const metrics: ServerMetrics = {
    registry,
    httpRequests: new Counter({
      name: 'ufdl_server_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    httpSeconds: new Histogram({
      name: 'ufdl_server_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by method and route pattern (long-polls included).',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60],
      registers,
    }),
  };
  new Gauge({
    name: 'ufdl_server_jobs',
    help: 'Jobs that are not soft-deleted, by lifecycle phase.',
    labelNames: ['phase'],
    registers,
    collect() {
      safely('jobs', () => {
        const counts = jobsByPhase(db);
        for (const phase of PHASES) this.set({ phase }, counts.get(phase) ?? 0);
      });
    },
  });
  new Gauge({
    name: 'ufdl_server_nodes',
    help: 'Registered worker nodes.',
    registers,
    collect() {
      safely('nodes', () => this.set((db.prepare('SELECT COUNT(*) AS n FROM nodes').get() as { n: number }).n));
    },
  });
  new Gauge({
    name: 'ufdl_server_nodes_working',
    help: 'Worker nodes that are working a job (current_job set).',
    registers,
    collect() {
      safely('nodes', () => this.set((db.prepare('SELECT COUNT(*) AS n FROM nodes WHERE current_job IS NOT NULL').get() as { n: number }).n));
    },
  });
  new Gauge({
    name: 'ufdl_server_list_waiting',
    help: 'List requests waiting on X-UFDL-Wait for a job.',
    registers,
    collect() {
      this.set(ctx.wakeups.stats().waiting);
    },
  });
  new Counter({
    name: 'ufdl_server_list_wakeups_total',
    help: 'Waiting list requests woken for a job (one per acquirable job, more when a woken node passes it).',
    labelNames: ['kind'],
    registers,
    collect() {
      const { wakes, reoffers } = ctx.wakeups.stats();
      this.reset();
      this.inc({ kind: 'first' }, wakes - reoffers);
      this.inc({ kind: 'passed_on' }, reoffers);
    },
  });
  // Group commit (store/durability.ts): with the syncs' count, mean sync time and answers per sync
  // are rates an operator can divide; 0 on PostgreSQL, whose commits are durable when they return.
  const durable = ctx.durable;
  new Counter({
    name: 'ufdl_server_durable_syncs_total',
    help: 'Disk syncs of group commit (one fdatasync of the SQLite WAL, shared by every commit made while the previous one ran), by result.',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      this.inc({ result: 'ok' }, durable.syncs);
      this.inc({ result: 'failed' }, durable.totals.failures);
    },
  });
  new Counter({
    name: 'ufdl_server_durable_sync_seconds_total',
    help: 'Seconds spent in the disk syncs of group commit (divided by the syncs: the mean time an answer waits for the disk).',
    registers,
    collect() {
      this.reset();
      this.inc(durable.totals.seconds);
    },
  });
  new Counter({
    name: 'ufdl_server_durable_waits_total',
    help: 'Answers and events that waited for a disk sync and were released by it (divided by the syncs: how many share one).',
    registers,
    collect() {
      this.reset();
      this.inc(durable.totals.released);
    },
  });
  // Cumulative, so any scraper's rate() is the utilisation over its own interval; near 1 the event
  // loop is the limit (more requests wait in its queue than it answers).
  new Counter({
    name: 'ufdl_server_event_loop_busy_seconds_total',
    help: "Seconds the server's event loop spent running (not waiting for I/O); its rate is the event loop's utilisation.",
    registers,
    collect() {
      this.reset();
      this.inc(performance.eventLoopUtilization().active / 1000);
    },
  });
  new Gauge({
    name: 'ufdl_server_uptime_seconds',
    help: 'Seconds since this server started.',
    registers,
    collect() {
      this.set((Date.now() - startedAt) / 1000);
    },
  });
  byContext.set(ctx, metrics);
  return metrics;
}

/**
 * Count every response by route pattern (never the raw URL, whose pks would explode the label set).
 * Call once on the root instance, before it is ready; later calls for the same server do nothing.
 */
export function registerMetricsHooks(app: FastifyInstance): void {
  if (hooked.has(app.ufdl)) return;
  hooked.add(app.ufdl);
  const metrics = serverMetrics(app.ufdl);
  // The labelled series of each (method, route, status), looked up once: prom-client otherwise
  // hashes the label set of every observation (a visible share of a small request's CPU).
  const series = new Map<string, { count: Counter.Internal; seconds: Histogram.Internal<'method' | 'route'> }>();
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? '(unmatched)';
    const key = `${request.method} ${reply.statusCode} ${route}`;
    let entry = series.get(key);
    if (!entry) {
      entry = {
        count: metrics.httpRequests.labels({ method: request.method, route, status: String(reply.statusCode) }),
        seconds: metrics.httpSeconds.labels({ method: request.method, route }),
      };
      series.set(key, entry);
    }
    entry.count.inc();
    entry.seconds.observe(reply.elapsedTime / 1000);
    done();
  });
}
