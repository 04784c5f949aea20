/**
 * Lost-node recovery (an extension: docs/COMPATIBILITY.md, Extensions): jobs held by a node unseen for `lostAfterSeconds` are aborted by the
 * sweeper, with the reason in the abort message and the log; nodes that keep talking keep their jobs.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import type { JobNotification } from '../../src/protocol/wire.js';
import { sweepLostNodes } from '../../src/server/sweeper.js';
import { startWithFixtures, type Fixtures } from '../helpers/fixtures.js';
import { storeContext } from './support/database.js';

// lost_after leaves room for a test's set-up requests on a loaded machine before the node goes quiet.
const LOST = { lostAfterSeconds: 3, sweepIntervalSeconds: 0.2 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `check` until it returns true (generous deadline for a loaded machine). */
async function eventually(check: () => boolean | Promise<boolean>, what: string, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function jobNode(f: Fixtures, job: number): Promise<number | null> {
  return (await f.call('GET', `/v1/jobs/${job}`)).body.node as number | null;
}

describe('lost-node sweeper (real server)', () => {
  it('aborts a STARTED job held by a silent node, sets its outputs aside, and tells watchers why', async () => {
    const f = await startWithFixtures(LOST);
    const node = f.node();
    const job = f.job();
    await f.startAs(node, job);
    const upload = await f.call('POST', `/v1/jobs/${job}/outputs/log/BLOB`, {
      node,
      body: 'partial',
      headers: { 'content-disposition': 'attachment; filename=log' },
    });
    expect(upload.status).toBe(200);
    const messages: JobNotification[] = [];
    const socket = new WebSocket(`${f.url.replace('http', 'ws')}/v1/jobs/${job}?token=${await f.adminToken()}`);
    onTestFinished(() => socket.terminate());
    socket.on('message', (data) => messages.push(JSON.parse(data.toString()) as JobNotification));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));

    // The node goes silent.
    await eventually(async () => (await jobNode(f, job)) === null, 'the job to be aborted');
    const after = (await f.call('GET', `/v1/jobs/${job}`)).body;
    expect(after).toMatchObject({ node: null, start_time: null, end_time: null, error_reason: null, outputs: [] });
    await eventually(() => messages.some((m) => m.transition === 'abort'), 'the abort message');
    const abort = messages.find((m) => m.transition === 'abort')!;
    expect(abort.transition_data.reason).toMatch(new RegExp(`^node ${node} lost: unseen since \\d{4}-\\d\\d-\\d\\dT`));
    expect(abort).not.toHaveProperty('node');

    // Another node can now run it; the lost node, back, gets the silent clean-up finish.
    const other = f.node();
    await f.startAs(other, job);
    const late = await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { error: 'was away' } });
    expect(late.status).toBe(200);
    expect(late.body.node).toBe(other);
    expect(f.nodeRow(node).current_job).toBeNull();
  });

  it('leaves jobs of a node that keeps talking, and finalised jobs of silent nodes', async () => {
    const f = await startWithFixtures(LOST);
    const busy = f.node();
    const silent = f.node();
    const [kept, finished] = f.jobs(2);
    await f.startAs(silent, finished!);
    await f.call('POST', `/v1/jobs/${finished}/finish`, { node: silent, json: {} });
    await f.startAs(busy, kept!);
    // Heartbeats well inside lostAfterSeconds, for twice that long.
    const until = Date.now() + 6_000;
    while (Date.now() < until) {
      expect((await f.call('POST', `/v1/jobs/${kept}/progress/0.5`, { node: busy, json: {} })).status).toBe(200);
      await sleep(200);
    }
    expect(await jobNode(f, kept!)).toBe(busy);
    const done = (await f.call('GET', `/v1/jobs/${finished}`)).body;
    expect(done.node).toBe(silent);
    expect(done.end_time).toEqual(expect.any(String));
  });

  it('aborts acquired-but-unstarted jobs of a silent node and leaves its ERRORED jobs failed', async () => {
    const f = await startWithFixtures(LOST);
    const node = f.node();
    const [acquired, errored] = f.jobs(2);
    await f.startAs(node, errored!);
    await f.call('POST', `/v1/jobs/${errored}/finish`, { node, json: { error: 'x' } });
    await f.call('GET', `/v1/jobs/${acquired}/acquire`, { node });
    await eventually(async () => (await jobNode(f, acquired!)) === null, 'the acquired job to be aborted');
    // A failure is an outcome: the job is not run again because its node went away afterwards.
    expect((await f.call('GET', `/v1/jobs/${errored}`)).body).toMatchObject({ node, error_reason: 'x', start_time: expect.any(String) });
  });

  it('does nothing in strict-reference mode (extensions off)', async () => {
    const f = await startWithFixtures({ ...LOST, extensions: false });
    const node = f.node();
    const job = f.job();
    await f.startAs(node, job);
    await sleep(4_000);
    expect(await jobNode(f, job)).toBe(node);
  });
});

describe('sweepLostNodes (one sweep)', () => {
  const context = () => storeContext({ lostAfterSeconds: 60 });

  it('aborts only jobs of nodes unseen for longer than lostAfterSeconds, logs a warning, and wakes waiting polls', async () => {
    const { ctx, warnings } = await context();
    const now = Date.parse('2030-01-01T12:00:00.000Z');
    const iso = (secondsAgo: number) => new Date(now - secondsAgo * 1000).toISOString();
    const insertNode = ctx.db.prepare(`INSERT INTO nodes (ip, "index", cpu_mem, owner, last_seen) VALUES (?, 0, 1, 1, ?)`);
    const lost = Number(insertNode.run('10.0.0.1', iso(61)).lastInsertRowid);
    const alive = Number(insertNode.run('10.0.0.2', iso(59)).lastInsertRowid);
    const insertJob = ctx.db.prepare(`INSERT INTO jobs (template, node, start_time, creation_time) VALUES (1, ?, ?, '2020-01-01T00:00:00.000Z')`);
    const lostJob = Number(insertJob.run(lost, iso(100)).lastInsertRowid);
    const aliveJob = Number(insertJob.run(alive, iso(100)).lastInsertRowid);
    const woken: number[] = [];
    const messages: string[] = [];
    ctx.hub.on('acquirable', (pk) => woken.push(pk));
    ctx.hub.on('transition', (_pk, message) => messages.push(message.transition));

    expect(sweepLostNodes(ctx, now)).toEqual([lostJob]);
    // The wake-up is told at once (the list answer it leads to waits for the sync like any answer);
    // the abort message for watchers waits for the disk sync that covers it (group commit).
    expect(woken).toEqual([lostJob]);
    expect(messages).toEqual([]);
    await ctx.durable.syncAfterCommit();
    expect(messages).toEqual(['abort']);
    expect(ctx.db.prepare('SELECT node, start_time FROM jobs WHERE pk = ?').get(lostJob)).toEqual({ node: null, start_time: null });
    expect((ctx.db.prepare('SELECT node FROM jobs WHERE pk = ?').get(aliveJob) as { node: number }).node).toBe(alive);
    expect(woken).toEqual([lostJob]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]![0]).toMatchObject({ job: lostJob, node: lost, lastSeen: iso(61) });
    expect(warnings[0]![1]).toBe(`aborted job ${lostJob}: node ${lost} lost: unseen since ${iso(61)}`);
    // A second sweep finds nothing more to do.
    expect(sweepLostNodes(ctx, now)).toEqual([]);
  });

  it('leaves the jobs of a node that spoke up after its query (on another replica) to that node', async () => {
    const { ctx } = await context();
    const now = Date.parse('2030-01-01T12:00:00.000Z');
    const iso = (secondsAgo: number) => new Date(now - secondsAgo * 1000).toISOString();
    const node = Number(ctx.db.prepare(`INSERT INTO nodes (ip, "index", cpu_mem, owner, last_seen) VALUES ('10.0.0.1', 0, 1, 1, ?)`).run(iso(61)).lastInsertRowid);
    const insertJob = ctx.db.prepare(`INSERT INTO jobs (template, node, start_time, creation_time) VALUES (1, ?, ?, '2020-01-01T00:00:00.000Z')`);
    const first = Number(insertJob.run(node, iso(100)).lastInsertRowid);
    const second = Number(insertJob.run(node, iso(100)).lastInsertRowid);
    // The node's heartbeat lands between the sweep's query and its second abort: the wake-up of the
    // first abort is told at once, inside the sweep, which is that moment.
    ctx.hub.on('acquirable', (pk) => {
      if (pk === first) ctx.db.prepare('UPDATE nodes SET last_seen = ? WHERE pk = ?').run(iso(0), node);
    });

    expect(sweepLostNodes(ctx, now)).toEqual([first]);
    expect((ctx.db.prepare('SELECT node FROM jobs WHERE pk = ?').get(second) as { node: number }).node).toBe(node);
  });
});
