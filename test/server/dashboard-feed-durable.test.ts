/**
 * The dashboard's feed shows each job as its event's transition left it, on disk: a frame never shows
 * a later write that awaits its sync (group commit, store/durability.ts), which a power cut or a
 * batch that does not commit could still undo. SQLite only: on PostgreSQL a commit is durable when
 * it returns.
 */
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';
import type { FeedFrame } from '../../src/protocol/dashboard.js';
import { startWithFixtures } from '../helpers/fixtures.js';
import { holdWalSyncs, server } from '../helpers/held-wal-sync.js';
import { STORE_UNDER_TEST } from '../helpers/store-under-test.js';
import { receiveJson } from '../helpers/ws-messages.js';

vi.mock('node:fs/promises', async (original) => (await import('../helpers/held-wal-sync.js')).withHeldWalSync(await original()));

vi.mock('../../src/server/store/turn-batch.js', async (original) => (await import('../helpers/held-wal-sync.js')).capturingServerDb(await original()));

describe.skipIf(STORE_UNDER_TEST === 'postgres')('the dashboard feed while writes await their sync', () => {
  it('shows each transition with the job as that transition left it, not a later write not yet on disk', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job();
    await f.startAs(node, job);
    const feed = new WebSocket(`${f.url.replace('http', 'ws')}/v1/ufdl-agent/events?token=${await f.adminToken()}`);
    onTestFinished(() => feed.terminate());
    const frames = receiveJson<FeedFrame>(feed);
    await new Promise((resolve, reject) => feed.once('open', resolve).once('error', reject));

    const { held: heldSync, release } = holdWalSyncs();
    onTestFinished(release);
    const first = f.call('POST', `/v1/jobs/${job}/progress/0.5`, { node, json: { step: 1 } });
    await heldSync;
    // Written while the first one's sync runs: not on disk (not even committed) when that sync ends.
    const second = f.call('POST', `/v1/jobs/${job}/progress/0.75`, { node, json: { step: 2 } });
    const progressOf = server.db!.prepare('SELECT progress_amount FROM jobs WHERE pk = ?').pluck();
    await vi.waitFor(() => expect(progressOf.get(job)).toBe(0.75));
    release();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);

    await frames.received(2);
    expect(frames.messages.map((frame) => [frame.event, frame.data, frame.job.progress])).toEqual([
      ['progress', { step: 1 }, 0.5],
      ['progress', { step: 2 }, 0.75],
    ]);
  });

  it('shows a new job as created, not with a later write not yet on disk', async () => {
    const f = await startWithFixtures();
    const template = f.template('fed');
    const node = f.node();
    const feed = new WebSocket(`${f.url.replace('http', 'ws')}/v1/ufdl-agent/events?token=${await f.adminToken()}`);
    onTestFinished(() => feed.terminate());
    const frames = receiveJson<FeedFrame>(feed);
    await new Promise((resolve, reject) => feed.once('open', resolve).once('error', reject));

    const { held: heldSync, release } = holdWalSyncs();
    onTestFinished(release);
    const created = f.call('POST', `/v1/job-templates/${template}/create-job`, { json: { input_values: {} } });
    await heldSync;
    const job = (f.db.prepare('SELECT MAX(pk) FROM jobs').pluck().get() as number | null) ?? 0;
    // The new job is committed (its sync is under way); the acquire made meanwhile is not.
    expect(job).toBeGreaterThan(0);
    const acquired = f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    const nodeOf = server.db!.prepare('SELECT node FROM jobs WHERE pk = ?').pluck();
    await vi.waitFor(() => expect(nodeOf.get(job)).toBe(node));
    release();
    expect((await created).status).toBe(200);
    expect((await acquired).status).toBe(200);

    await frames.received(2);
    expect(frames.messages.map((frame) => [frame.event, frame.job.pk, frame.job.node])).toEqual([
      ['created', job, null],
      ['acquire', job, node],
    ]);
  });
});
