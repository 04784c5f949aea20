/**
 * Regression (found by the fault campaign, test/faults/partition.fault.ts with a tight fence margin):
 * a node's stored `last_seen` is refreshed at most once per HEARTBEAT_RESOLUTION_MS, so it may lag
 * the node's latest request by up to that much. The sweeper counted `lost_after` from the stored
 * time and so gave a job away up to a second before the node had really been silent for `lost_after`
 * — before an agent that fences at `lost_after` minus its margin had stopped its child, and the job
 * ran twice at once. A node is lost only once it has certainly been silent for `lost_after`.
 */
import { describe, expect, it } from 'vitest';
import type { ServerContext } from '../../src/server/context.js';
import { HEARTBEAT_RESOLUTION_MS } from '../../src/server/identity.js';
import { sweepLostNodes } from '../../src/server/sweeper.js';
import { storeContext } from './support/database.js';

async function context(lostAfterSeconds: number): Promise<ServerContext> {
  return (await storeContext({ lostAfterSeconds })).ctx;
}

describe('lost-node sweep and the last_seen resolution', () => {
  it('should not give away the job of a node whose stored last_seen is older than lost_after by less than the resolution', async () => {
    const ctx = await context(4);
    const now = Date.parse('2030-01-01T12:00:00.000Z');
    const at = (msAgo: number) => new Date(now - msAgo).toISOString();
    const insertNode = ctx.db.prepare(`INSERT INTO nodes (ip, "index", cpu_mem, owner, last_seen) VALUES (?, 0, 1, 1, ?)`);
    const insertJob = ctx.db.prepare(`INSERT INTO jobs (template, node, start_time, creation_time) VALUES (1, ?, ?, '2020-01-01T00:00:00.000Z')`);
    // Stored 4.5 s ago: the node may have talked 3.5 s ago (not recorded yet): not certainly lost.
    const recent = Number(insertNode.run('10.0.0.1', at(4_000 + HEARTBEAT_RESOLUTION_MS / 2)).lastInsertRowid);
    const recentJob = Number(insertJob.run(recent, at(60_000)).lastInsertRowid);
    // Stored lost_after + resolution ago: silent for at least lost_after whatever it did since.
    const lost = Number(insertNode.run('10.0.0.2', at(4_000 + HEARTBEAT_RESOLUTION_MS)).lastInsertRowid);
    const lostJob = Number(insertJob.run(lost, at(60_000)).lastInsertRowid);

    expect(sweepLostNodes(ctx, now)).toEqual([lostJob]);
    expect((ctx.db.prepare('SELECT node FROM jobs WHERE pk = ?').get(recentJob) as { node: number }).node).toBe(recent);
  });
});
