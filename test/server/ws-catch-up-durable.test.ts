/**
 * The catch-up message a new watcher of `ws://…/v1/jobs/{pk}` gets shows the job as it is on disk:
 * it waits for the group commit's sync like every event does (store/durability.ts), and a transition
 * it already shows is not sent again as an event. SQLite only: the sync held here is the WAL's
 * `fdatasync`; on PostgreSQL a commit is durable when it returns.
 */
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';
import type { JobNotification } from '../../src/protocol/wire.js';
import { startWithFixtures } from '../helpers/fixtures.js';
import { holdWalSyncs, server } from '../helpers/held-wal-sync.js';
import { STORE_UNDER_TEST } from '../helpers/store-under-test.js';
import { receiveJson, type ReceivedMessages } from '../helpers/ws-messages.js';

vi.mock('node:fs/promises', async (original) => (await import('../helpers/held-wal-sync.js')).withHeldWalSync(await original()));

vi.mock('../../src/server/store/turn-batch.js', async (original) => (await import('../helpers/held-wal-sync.js')).capturingServerDb(await original()));

async function watch(url: string, job: number, token: string): Promise<ReceivedMessages<JobNotification>> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/jobs/${job}?token=${encodeURIComponent(token)}`);
  onTestFinished(() => socket.terminate());
  const received = receiveJson<JobNotification>(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return received;
}

describe.skipIf(STORE_UNDER_TEST === 'postgres')('catch-up of a watcher that connects while a transition awaits its sync', () => {
  it('is sent once the transition is on disk, and the transition is not sent again', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job();
    await f.startAs(node, job);

    // Hold the disk: the progress commits, but its answer and its event wait for the sync.
    const { held: heldSync, release } = holdWalSyncs();
    onTestFinished(release);
    const progressed = f.call('POST', `/v1/jobs/${job}/progress/0.5`, { node, json: { step: 1 } });
    await heldSync;

    const watcher = await watch(f.url, job, await f.adminToken());
    // The handshake is done and the job read; a catch-up sent now would show a progress that a power
    // cut could still undo. A message written at the handshake arrives within this pause (a pause can
    // only let such a defect pass unseen on a slow machine, never fail a correct server).
    await new Promise((r) => setTimeout(r, 300));
    expect(watcher.messages).toEqual([]);

    release();
    await progressed;
    await watcher.received(1);
    expect(watcher.messages[0]).toMatchObject({ transition: 'progress', pk: job, progress: 0.5, node, transition_data: {} });

    // The next transition is the watcher's next message: the one it caught up with is not repeated.
    await f.call('POST', `/v1/jobs/${job}/progress/0.75`, { node, json: { step: 2 } });
    await watcher.received(2);
    expect(watcher.messages[1]).toMatchObject({ transition: 'progress', pk: job, progress: 0.75, transition_data: { step: 2 } });
  });

  it('joins a watcher whose catch-up waited on a batch that did not commit, with the state as committed', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job();
    await f.startAs(node, job);

    const { held: heldSync, release } = holdWalSyncs();
    onTestFinished(release);
    const committed = f.call('POST', `/v1/jobs/${job}/progress/0.5`, { node, json: { step: 1 } });
    await heldSync;
    // Written while the sync runs: the batch stays open for the next one, and the watcher's catch-up
    // (read now) waits for it.
    const lost = f.call('POST', `/v1/jobs/${job}/progress/0.6`, { node, json: { step: 2 } });
    const progressOf = server.db!.prepare('SELECT progress_amount FROM jobs WHERE pk = ?').pluck();
    await vi.waitFor(() => expect(progressOf.get(job)).toBe(0.6));
    const watcher = await watch(f.url, job, await f.adminToken());
    // What SQLite does to the open batch on a full disk or an I/O error: the whole of it is undone.
    server.db!.exec('ROLLBACK');

    release();
    expect((await committed).status).toBe(200);
    expect((await lost).status).toBe(503);

    // The watcher is not left out: it catches up with what did commit, then hears what comes next.
    await f.call('POST', `/v1/jobs/${job}/progress/0.75`, { node, json: { step: 3 } });
    await watcher.received(2);
    expect(watcher.messages).toMatchObject([
      { transition: 'progress', pk: job, progress: 0.5 },
      { transition: 'progress', pk: job, progress: 0.75, transition_data: { step: 3 } },
    ]);
  });

  it('tells a watcher whose catch-up waited on a batch that did not commit, and whose job was hard-deleted meanwhile, that the job is gone once the delete is on disk', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job();
    await f.startAs(node, job);

    const first = holdWalSyncs();
    onTestFinished(first.release);
    const committed = f.call('POST', `/v1/jobs/${job}/progress/0.5`, { node, json: { step: 1 } });
    await first.held;
    const lost = f.call('POST', `/v1/jobs/${job}/progress/0.6`, { node, json: { step: 2 } });
    const progressOf = server.db!.prepare('SELECT progress_amount FROM jobs WHERE pk = ?').pluck();
    await vi.waitFor(() => expect(progressOf.get(job)).toBe(0.6));
    const socket = new WebSocket(`${f.url.replace(/^http/, 'ws')}/v1/jobs/${job}?token=${encodeURIComponent(await f.adminToken())}`);
    onTestFinished(() => socket.terminate());
    const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    let closedYet = false;
    void closed.then(() => (closedYet = true));
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    // The open batch is undone (a full disk), and the job is hard-deleted in the next one.
    server.db!.exec('ROLLBACK');
    const deleted = f.call('DELETE', `/v1/jobs/${job}/hard`);
    await vi.waitFor(() => expect(progressOf.get(job)).toBeUndefined());

    // The first sync ends, and the next finds the batch lost: the watcher's catch-up reads the job
    // again, and finds it gone. The delete is committed, not yet synced (the sync after is held): a
    // close now would tell of a delete that a power cut could undo.
    first.release();
    const second = holdWalSyncs();
    onTestFinished(second.release);
    expect((await committed).status).toBe(200);
    expect((await lost).status).toBe(503);
    await new Promise((r) => setTimeout(r, 300));
    expect(closedYet).toBe(false);
    await second.held;

    second.release();
    expect(await closed).toEqual({ code: 1008, reason: 'job not found' });
    // (The delete's own answer says its outcome is unknown, 503: it waited on the sync that found the
    // batch before it lost.)
    await deleted;
  });
});
