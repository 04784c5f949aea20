/**
 * Replicas whose clocks disagree must not make a node look lost early. Replica B's clock lags the
 * one of replica A, which leads the lost-node sweep, by more than `lost_after`. A node talks to B
 * and holds a running job; A's sweep must leave it alone. When `last_seen` was stamped with B's
 * clock and the cutoff computed with A's, the node looked two minutes silent the moment it spoke,
 * and A's first sweep gave its running job away — before the agent, which fences at `lost_after`
 * minus its margin of its own silence, had stopped it: the job ran twice at once.
 */
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Fixtures } from '../../helpers/fixtures.js';
import { usePgCluster } from '../../helpers/postgres.js';
import { startReplicas } from '../../helpers/replicas.js';
import { until } from '../../helpers/wait.js';

const cluster = usePgCluster();

const SKEWED_CLOCK = join(import.meta.dirname, '..', '..', 'fixtures', 'skewed-clock.cjs');
const LOST_AFTER_S = 60;
/** B's clock lags A's by twice `lost_after`: far more than any `fence_margin`. */
const SKEW_MS = -2 * LOST_AFTER_S * 1000;

describe('replicas whose clocks disagree', () => {
  it("do not give away the running job of a node talking to the replica whose clock lags the sweeping one's", async () => {
    const url = await cluster.get().createDatabase('clock_skew');
    const lostAfter = { UFDL_AGENT_SERVE_LOST_AFTER: String(LOST_AFTER_S) };
    const skewed = {
      ...lostAfter,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${SKEWED_CLOCK}`.trim(),
      UFDL_TEST_CLOCK_SKEW_MS: String(SKEW_MS),
    };
    // A starts first and so leads the sweep (every 15 s); B, behind on the clock, serves the nodes.
    const { replicas } = await startReplicas(2, [lostAfter, skewed], { databaseUrl: url });
    const b = replicas[1]!;
    const fx = new Fixtures(b.server);
    onTestFinished(() => fx.close());

    // The node has never been seen: its first request through B stamps last_seen.
    const node = fx.node(undefined, { lastSeen: null });
    const job = fx.job();
    await fx.startAs(node, job);
    const seen = fx.nodeRow(node).last_seen!;
    // One format whichever clock wrote it: text order is time order (the sweep compares text).
    expect(new Date(seen).toISOString()).toBe(seen);

    // A canary: a node really silent for ages, holding a later job. A sweep that gives the canary's
    // job away has also judged the node's (it goes through held jobs in pk order, in one query).
    const canary = fx.node(undefined, { lastSeen: null });
    const canaryJob = fx.job();
    await fx.startAs(canary, canaryJob);
    fx.db.prepare('UPDATE nodes SET last_seen = ? WHERE pk = ?').run('2000-01-01T00:00:00.000Z', canary);
    await until(() => fx.jobRow(canaryJob)?.node === null, 90_000, "A's sweep to abort the silent canary's job");

    // The node spoke through B well within lost_after of that sweep: its job is still its own.
    expect(fx.jobRow(job)).toMatchObject({ node, end_time: null });
    expect(fx.jobRow(job)!.start_time).not.toBeNull();
  }, 180_000);
});
