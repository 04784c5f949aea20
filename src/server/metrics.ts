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
import { Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';
import type { Phase } from '../protocol/phase.js';
import type { ServerContext } from './context.js';
import { cachedStatement } from './store/db.js';
import { turnBatchCommits } from './store/turn-batch.js';

export interface ServerMetrics {
  registry: Registry;
  /** Responses, counted by {@link registerMetricsHooks}. */
  responses: ResponseTally;
}

/** The buckets (seconds) of `ufdl_server_http_request_duration_seconds`. */
const DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60];

interface ResponseCounts {
  method: string;
  route: string;
  status: string;
  count: number;
  seconds: number;
  /** Responses by the first bucket whose bound they do not exceed; the last slot: above every bound. */
  byBucket: number[];
}

/**
 * Responses by method, status and route pattern, counted in plain numbers and handed to prom-client
 * only when scraped. prom-client hashes an observation's label set at every `inc()` and `observe()`
 * (a string built from the sorted label names, even through `labels()`): with a counter and a
 * histogram per response that was 3 % of the server's instructions under the lifecycle load.
 */
export class ResponseTally {
  readonly #series = new Map<string, ResponseCounts>();

  count(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${status} ${route}`;
    let entry = this.#series.get(key);
    if (entry === undefined) {
      entry = { method, route, status: String(status), count: 0, seconds: 0, byBucket: new Array<number>(DURATION_BUCKETS.length + 1).fill(0) };
      this.#series.set(key, entry);
    }
    entry.count++;
    entry.seconds += seconds;
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]!) bucket++;
    entry.byBucket[bucket]!++;
  }

  entries(): Iterable<Readonly<ResponseCounts>> {
    return this.#series.values();
  }
}

/**
 * The durations of {@link ResponseTally} as a prom-client histogram, one series per (method, route):
 * the values its registry reads from a histogram (cumulative `_bucket` lines by `le`, `+Inf`, `_sum`,
 * `_count`), built at each scrape. Nothing is ever observed through prom-client's own histogram,
 * which can only be fed one observation at a time; test/server/ops.test.ts reads the exposition back.
 */
class TalliedDurations extends Histogram<'method' | 'route'> {
  static readonly NAME = 'ufdl_server_http_request_duration_seconds';
  static readonly HELP = 'Time to answer an HTTP request, by method and route pattern (long-polls included).';
  readonly #tally: ResponseTally;

  constructor(tally: ResponseTally, registers: Registry[]) {
    super({ name: TalliedDurations.NAME, help: TalliedDurations.HELP, labelNames: ['method', 'route'], buckets: [...DURATION_BUCKETS], registers });
    this.#tally = tally;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<'method' | 'route'>>> {
    const { NAME, HELP } = TalliedDurations;
    // What prom-client's histogram gives its registry (prom-client's types say `type` is an enum;
    // the registry writes it into the exposition, where it must read `histogram`).
    return { name: NAME, help: HELP, type: 'histogram', aggregator: 'sum', values: this.#values(NAME) } as unknown as MetricObjectWithValues<
      MetricValueWithName<'method' | 'route'>
    >;
  }

  /** What the registry reads for the text exposition when a metric has it (prom-client's histogram does). */
  getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<'method' | 'route'>>> {
    return this.get();
  }

  #values(name: string): MetricValueWithName<'method' | 'route'>[] {
    const byRoute = new Map<string, { method: string; route: string; count: number; seconds: number; byBucket: number[] }>();
    for (const entry of this.#tally.entries()) {
      const key = `${entry.method} ${entry.route}`;
      let sum = byRoute.get(key);
      if (sum === undefined) {
        sum = { method: entry.method, route: entry.route, count: 0, seconds: 0, byBucket: new Array<number>(entry.byBucket.length).fill(0) };
        byRoute.set(key, sum);
      }
      sum.count += entry.count;
      sum.seconds += entry.seconds;
      for (let i = 0; i < entry.byBucket.length; i++) sum.byBucket[i]! += entry.byBucket[i]!;
    }
    // `le` is the histogram's own label, which prom-client's types leave out of the label names.
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const { method, route, count, seconds, byBucket } of byRoute.values()) {
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += byBucket[i]!;
        values.push({ labels: { method, route, le }, value: cumulative, metricName: `${name}_bucket` });
      });
      values.push(
        { labels: { method, route, le: '+Inf' }, value: count, metricName: `${name}_bucket` },
        { labels: { method, route }, value: seconds, metricName: `${name}_sum` },
        { labels: { method, route }, value: count, metricName: `${name}_count` },
      );
    }
    return values as MetricValueWithName<'method' | 'route'>[];
  }
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

  const responses = new ResponseTally();
  const metrics: ServerMetrics = { registry, responses };
  new Counter({
    name: 'ufdl_server_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'],
    registers,
    collect() {
      this.reset();
      for (const { method, route, status, count } of responses.entries()) this.inc({ method, route, status }, count);
    },
  });
  new TalliedDurations(responses, registers);
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
    help: 'Waiting list requests woken for a job (one per acquirable job, more when a woken node passes it), or to look again after events from other replicas were missed.',
    labelNames: ['kind'],
    registers,
    collect() {
      const { wakes, reoffers, rechecks } = ctx.wakeups.stats();
      this.reset();
      this.inc({ kind: 'first' }, wakes - reoffers);
      this.inc({ kind: 'passed_on' }, reoffers);
      this.inc({ kind: 'recheck' }, rechecks);
    },
  });
  new Gauge({
    name: 'ufdl_server_list_wait_bases',
    help: 'Distinct filters (less the pks they exclude) the waiting list requests use: each acquirable job is checked against each at most once.',
    registers,
    collect() {
      this.set(ctx.wakeups.stats().bases);
    },
  });
  new Counter({
    name: 'ufdl_server_list_wait_checks_total',
    help: 'Queries the wake-up hub ran: whether an acquirable job is in a waiting filter\'s result.',
    registers,
    collect() {
      this.reset();
      this.inc(ctx.wakeups.stats().baseChecks);
    },
  });
  new Counter({
    name: 'ufdl_server_list_waits_declined_total',
    help: 'List requests with X-UFDL-Wait answered at once because their user already waited on serve.max_wait_filters_per_user distinct filters (or as much filter as one list may ask), or because their filter searches text.',
    registers,
    collect() {
      this.reset();
      this.inc(ctx.wakeups.stats().declined);
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
    name: 'ufdl_server_write_batches_total',
    help: 'Batches of transitions committed together (SQLite: the write transactions of one turn, or of every turn while a disk sync ran); divided by the syncs: how many commits one sync covers.',
    registers,
    collect() {
      this.reset();
      this.inc(turnBatchCommits(db));
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
  const { responses } = serverMetrics(app.ufdl);
  app.addHook('onResponse', (request, reply, done) => {
    responses.count(request.method, request.routeOptions.url ?? '(unmatched)', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}
