/**
 * A live-log follower (`ws://…/v1/jobs/{pk}/log`) tells of a job's end, or that the job is gone, only
 * once that end or that delete is on disk: the job row it reads may hold a commit still waiting for
 * the group commit's sync (store/durability.ts), which a power cut could undo. SQLite only: the sync held here is the WAL's
 * `fdatasync`; on PostgreSQL a commit is durable when it returns.
 */
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';
import type { LogFrame } from '../../src/protocol/live-log.js';
import { startWithFixtures, type Fixtures } from '../helpers/fixtures.js';
import { holdNext } from '../helpers/gated-live-log-store.js';
import { holdWalSyncs } from '../helpers/held-wal-sync.js';
import { STORE_UNDER_TEST } from '../helpers/store-under-test.js';

vi.mock('node:fs/promises', async (original) => (await import('../helpers/held-wal-sync.js')).withHeldWalSync(await original()));

vi.mock('../../src/server/store/turn-batch.js', async (original) => (await import('../helpers/held-wal-sync.js')).capturingServerDb(await original()));

vi.mock('../../src/server/live-log/store.js', async (original) => (await import('../helpers/gated-live-log-store.js')).gatedLiveLogStore(await original()));

function append(f: Fixtures, job: number, node: number, offset: number, text: string) {
  return f.call('POST', `/v1/jobs/${job}/log?offset=${offset}&max_bytes=65536`, {
    node,
    body: new Uint8Array(Buffer.from(text)),
    headers: { 'content-type': 'application/octet-stream' },
  });
}

/** Follow job `job`'s live log; its frames as they come, text frames parsed. */
async function follow(f: Fixtures, job: number): Promise<(LogFrame | string)[]> {
  const frames: (LogFrame | string)[] = [];
  const socket = new WebSocket(`${f.url.replace(/^http/, 'ws')}/v1/jobs/${job}/log?offset=0&token=${encodeURIComponent(await f.adminToken())}`);
  onTestFinished(() => socket.terminate());
  // Listening before 'open': the start frame may arrive in the same packet as the handshake's answer.
  socket.on('message', (data, binary) => frames.push(binary ? (data as Buffer).toString() : (JSON.parse(data.toString()) as LogFrame)));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return frames;
}

/** A server with a running job whose log holds `text`. */
async function runningJobWithLog(text: string): Promise<{ f: Fixtures; node: number; job: number }> {
  const f = await startWithFixtures();
  const node = f.node();
  const job = f.job();
  await f.startAs(node, job);
  expect((await append(f, job, node, 0, text)).status).toBe(200);
  return { f, node, job };
}

const ends = (frames: (LogFrame | string)[]) => frames.filter((frame) => typeof frame !== 'string' && frame.type === 'end');

describe.skipIf(STORE_UNDER_TEST === 'postgres')('a live-log follower while a transition awaits its sync', () => {
  it('tells the end of a job cancelled while it runs once the cancel is on disk, after the bytes appended meanwhile', async () => {
    const { f, node, job } = await runningJobWithLog('first\n');
    const frames = await follow(f, job);
    await vi.waitFor(() => expect(frames).toContain('first\n'));

    // Hold the disk: the cancel commits, but its answer waits for the sync.
    const { held, release } = holdWalSyncs();
    onTestFinished(release);
    const cancelled = f.call('DELETE', `/v1/jobs/${job}/cancel`);
    await held;
    // The node, stopping its child, still appends (a cancelled job's log stays open to its node);
    // the bytes wake the follower, which reads the job as cancelled: an end a power cut could undo.
    const appended = append(f, job, node, 6, 'second\n');
    // An end sent on that read arrives within this pause (a pause can only let such a defect pass
    // unseen on a slow machine, never fail a correct server).
    await new Promise((r) => setTimeout(r, 300));
    expect(ends(frames), JSON.stringify(frames)).toEqual([]);

    release();
    expect((await cancelled).status).toBe(200);
    expect((await appended).status).toBe(200);
    await vi.waitFor(() => expect(ends(frames)).toHaveLength(1));
    expect(frames.filter((frame) => typeof frame === 'string').join('')).toBe('first\nsecond\n');
    expect(frames.at(-1)).toEqual({ type: 'end', length: 13 });
  });

  it('tells a follower that connects while the end awaits its sync that the log is complete only once it is on disk', async () => {
    const { f, node, job } = await runningJobWithLog('only\n');

    const { held, release } = holdWalSyncs();
    onTestFinished(release);
    const finished = f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} });
    await held;
    const frames = await follow(f, job);
    await new Promise((r) => setTimeout(r, 300));
    // Its start frame would say `complete: true` of a finish that is not yet on disk.
    expect(frames, JSON.stringify(frames)).toEqual([]);

    release();
    expect((await finished).status).toBe(200);
    await vi.waitFor(() => expect(ends(frames)).toHaveLength(1));
    expect(frames).toEqual([{ type: 'start', offset: 0, length: 5, complete: true, max_bytes: 65536 }, 'only\n', { type: 'end', length: 5 }]);
  });

  it('tells a follower whose job is hard-deleted during its handshake that the job is gone only once the delete is on disk', async () => {
    const { f, job } = await runningJobWithLog('text\n');
    // The handshake stops in its look-up of the log, after it found the job.
    const { gated, release: releaseLookUp } = holdNext('info');
    onTestFinished(releaseLookUp);
    const socket = new WebSocket(`${f.url.replace(/^http/, 'ws')}/v1/jobs/${job}/log?offset=0&token=${encodeURIComponent(await f.adminToken())}`);
    onTestFinished(() => socket.terminate());
    const frames: unknown[] = [];
    socket.on('message', (data) => frames.push(data.toString()));
    const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    let closedYet = false;
    void closed.then(() => (closedYet = true));
    await gated;

    // Meanwhile the job is hard-deleted: committed, its answer waiting for the sync.
    const { held, release } = holdWalSyncs();
    onTestFinished(release);
    const deleted = f.call('DELETE', `/v1/jobs/${job}/hard`);
    await held;
    releaseLookUp();
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    // A close sent on the handshake's read of the deleted row arrives within this pause (a pause can
    // only let such a defect pass unseen on a slow machine, never fail a correct server).
    await new Promise((r) => setTimeout(r, 300));
    expect(closedYet).toBe(false);

    release();
    expect((await deleted).status).toBe(200);
    expect(await closed).toEqual({ code: 1008, reason: 'job not found' });
    expect(frames).toEqual([]);
  });
});
