/**
 * A replica that may have missed the others' events catches up on them from the database.
 *
 * When its listening connection is replaced:
 * while replica B is cut off from the database, replica A cancels a job B's watcher follows and creates one
 * B's waiting node would take. Once B listens again, with no further event, its watcher is told
 * where the job is now, its waiting list answers with the job made in the gap (a recheck, not its
 * wait running out), and its dashboards are told to load again. Likewise a follower of a live log
 * on B receives the bytes A appended in the gap.
 *
 * When another replica could not relay an event (its publish failed, every try of it): the
 * statement that publishes it is cut by the proxy in front of that replica, while its transactions
 * and its other notifications pass.
 */
import pg from 'pg';
import WebSocket from 'ws';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { FeedMessage } from '../../../src/protocol/dashboard.js';
import type { JobNotification } from '../../../src/protocol/wire.js';
import { UfdlClient } from '../../../src/client/api.js';
import { TcpProxy } from '../../faults/helpers/proxy.js';
import { createJob, importTemplate, shellTemplate } from '../../helpers/agent.js';
import { Fixtures } from '../../helpers/fixtures.js';
import { usePgCluster } from '../../helpers/postgres.js';
import { startReplicas, type Replica } from '../../helpers/replicas.js';
import { HUB_CHANNEL } from '../../../src/server/store/postgres/hub-relay.js';
import { ADMIN_PASSWORD, ADMIN_USER, api, freePort, loginAt, spawnServe, type TestServer } from '../../helpers/server.js';
import { until } from '../../helpers/wait.js';
import { receiveJson } from '../../helpers/ws-messages.js';

const cluster = usePgCluster();

type Reachable = Pick<TestServer, 'url' | 'adminToken'>;

async function metric(server: Reachable, name: string, labels: string): Promise<number> {
  const text = (await api(server.url, 'GET', '/metrics', { token: server.adminToken })).text;
  const prefix = labels === '' ? `${name} ` : `${name}{${labels}}`;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function socketTo(server: Reachable, path: string): WebSocket {
  const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}${path}${path.includes('?') ? '&' : '?'}token=${server.adminToken}`);
  onTestFinished(() => socket.terminate());
  return socket;
}

const opened = (socket: WebSocket) => new Promise<void>((resolve, reject) => socket.once('open', () => resolve()).once('error', reject));

/** Replica A on the database at `url`, and replica B on the same one through a proxy the test can cut. */
async function replicaBehindProxy(url: URL): Promise<{ a: Replica; b: TestServer; proxy: TcpProxy }> {
  const { dataDir, replicas } = await startReplicas(1, [], { databaseUrl: url.toString() });
  // B is a process of its own, as A: its statements block its event loop, and the proxy must run.
  const proxy = await TcpProxy.start({ port: Number(url.port) });
  onTestFinished(() => proxy.close());
  const proxied = new URL(url);
  proxied.port = String(proxy.port);
  const served = await spawnServe(dataDir, await freePort(), {}, { databaseUrl: proxied.toString() });
  const b: TestServer = {
    url: served.url,
    dataDir,
    databaseUrl: proxied.toString(),
    adminToken: await loginAt(served.url, ADMIN_USER, ADMIN_PASSWORD),
    close: async () => {},
    login: (username, password) => loginAt(served.url, username, password),
  };
  return { a: replicas[0]!, b, proxy };
}

/** Resolves once a notification on the replicas' channel (from any of them) satisfies `matches`. */
async function heardOnHub(url: URL, matches: (event: Record<string, unknown>) => boolean): Promise<{ heard: Promise<void> }> {
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  onTestFinished(() => client.end());
  const heard = new Promise<void>((resolve) =>
    client.on('notification', (n) => {
      if (n.payload !== undefined && matches(JSON.parse(n.payload) as Record<string, unknown>)) resolve();
    }),
  );
  await client.query(`LISTEN ${HUB_CHANNEL}`);
  return { heard };
}

describe('a replica whose listening connection is replaced', () => {
  it('tells its watchers, waiting nodes and dashboards what the others did in the gap', async () => {
    const url = new URL(await cluster.get().createDatabase('resync_1'));
    // B reaches the database through a proxy the test can cut: its listening connection with the rest.
    const { a: replicaA, b, proxy } = await replicaBehindProxy(url);
    const a = replicaA.server;

    const template = await importTemplate(a, shellTemplate('resync', 'true'));
    const watched = await createJob(a, template);
    // On B: a watcher of the job (waiting to start: nothing to catch up on yet), a dashboard feed,
    // and a node's list of the jobs newer than it, held open for as long as the server allows.
    const watcher = socketTo(b, `/v1/jobs/${watched}`);
    const toldWatcher = receiveJson<JobNotification>(watcher, 90_000);
    const feed = socketTo(b, '/v1/ufdl-agent/events');
    const toldFeed = receiveJson<FeedMessage>(feed, 90_000);
    await Promise.all([opened(watcher), opened(feed)]);
    const waiting = api(b.url, 'POST', '/v1/jobs/list', {
      token: b.adminToken,
      json: { expressions: [{ type: 'compare', field: 'pk', operator: '>', value: watched }] },
      headers: { 'x-ufdl-wait': '60' },
    });
    await until(async () => (await metric(b, 'ufdl_server_list_waiting', '')) === 1, 30_000, 'the list to wait on B');

    // The gap: B's connections are cut, and every new one is refused until the path heals. A's
    // events go out meanwhile, and B hears none of them.
    proxy.setMode('reset');
    expect((await api(a.url, 'DELETE', `/v1/jobs/${watched}/cancel`, { token: a.adminToken })).status).toBeLessThan(300);
    const madeInGap = await createJob(a, template);
    proxy.setMode('pass');

    // Nothing else happens: B, listening again, catches up by itself.
    const [told] = await toldWatcher.received(1);
    expect(told).toMatchObject({ pk: watched, transition: 'cancel' });
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect((answer.body as { pk: number }[]).map((j) => j.pk)).toEqual([madeInGap]);
    // Answered by the recheck, not when its wait ran out.
    expect(await metric(b, 'ufdl_server_list_wakeups_total', 'kind="recheck"')).toBe(1);
    await until(() => toldFeed.messages.some((m) => m.type === 'resync'), 30_000, 'the dashboard to be told to load again');
  }, 180_000);

  it('tells the watcher of a running job that it was aborted in the gap, which joining would not say', async () => {
    const url = new URL(await cluster.get().createDatabase('resync_3'));
    const { a, b, proxy } = await replicaBehindProxy(url);
    const fx = new Fixtures(a.server);
    onTestFinished(() => fx.close());
    const node = fx.node();
    const job = fx.job();
    // A watcher on B (the agent running the job, or its page), which hears the job start on A.
    // Joined before the start: the relayed start is what it last hears, whenever it reaches B.
    const watcher = socketTo(b, `/v1/jobs/${job}`);
    const told = receiveJson<JobNotification>(watcher, 90_000);
    await opened(watcher);
    await fx.startAs(node, job);
    await until(() => told.messages.some((m) => m.transition === 'start'), 30_000, 'the watcher on B to hear the job start');

    // The gap: the job is aborted on A (an admin, or the lost-node sweep) while B cannot hear. The
    // job is back in CREATED, of which a watcher that joins is told nothing.
    proxy.setMode('reset');
    const aborted = await api(a.server.url, 'DELETE', `/v1/jobs/${job}/abort`, { token: a.server.adminToken });
    expect(aborted.status, aborted.text).toBeLessThan(300);
    proxy.setMode('pass');

    // B, listening again, tells its watcher the job was taken back, by itself.
    await until(() => told.messages.some((m) => m.transition === 'abort'), 60_000, 'the watcher on B to be told of the abort');
    const last = told.messages.at(-1)!;
    expect(last).toMatchObject({ pk: job, transition: 'abort', cancelled: false });
    expect(last).not.toHaveProperty('node');
  }, 180_000);

  it("sends a live log's follower the bytes appended elsewhere in the gap", async () => {
    const url = new URL(await cluster.get().createDatabase('resync_2'));
    const { a, b, proxy } = await replicaBehindProxy(url);
    const fx = new Fixtures(a.server);
    onTestFinished(() => fx.close());
    const node = fx.node();
    const job = fx.job();
    await fx.startAs(node, job);
    let offset = 0;
    const append = async (text: string) => {
      const res = await fx.call('POST', `/v1/jobs/${job}/log?offset=${offset}&max_bytes=65536`, {
        node,
        body: new Uint8Array(Buffer.from(text)),
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(res.status, res.text).toBe(200);
      offset += text.length;
    };

    // A follower on B, which has read the log as it was (B keeps what it knows of the log's state):
    // the client's own (the CLI's), which connects again from what it has, with back-off, whenever
    // its socket ends or a connection is refused. B ends it when the cut lands while B reads the
    // job's row for it (A's notification of the first line can come after the line itself), then
    // refuses it with 503 until it reaches the database again. A hand-written socket here had no
    // 'error' listener: ws threw on that 503 and never emitted 'close', so it never came back.
    // Otherwise nothing but the resync pokes the follower, so without one it waits in silence.
    const received: Buffer[] = [];
    const text = () => Buffer.concat(received).toString();
    const client = new UfdlClient({ serverUrl: b.url, username: ADMIN_USER, password: ADMIN_PASSWORD });
    onTestFinished(() => client.close());
    const follower = client.followLog(job, 0, { onBytes: (bytes) => received.push(bytes), onEnd: () => {} });
    onTestFinished(() => follower.close());
    await append('before the gap\n');
    await until(() => text() === 'before the gap\n', 30_000, 'the follower on B to receive the first line');

    // The gap: B's connections are cut and refused. A appends, and its relay tells the replicas
    // (this test's own listener hears it) while B cannot hear.
    proxy.setMode('reset');
    const { heard } = await heardOnHub(url, (e) => e.e === 'logAppended' && Array.isArray(e.pks) && e.pks.includes(job));
    await append('in the gap\n');
    await heard;
    proxy.setMode('pass');

    // Nothing more is appended: B, listening again, has its follower read on by itself.
    await until(() => text() === 'before the gap\nin the gap\n', 60_000, 'the follower on B to receive the line appended in the gap');
  }, 180_000);
});

describe('a replica whose publish of an event failed', () => {
  it("tells the others to catch up, so a node waiting on another replica gets the job made on it", async () => {
    const url = new URL(await cluster.get().createDatabase('resync_publish_1'));
    // Here the proxied replica is the one that publishes; the other one has the waiting node.
    const { a: replicaA, b: publisher, proxy } = await replicaBehindProxy(url);
    const waiter = replicaA.server;
    const template = await importTemplate(publisher, shellTemplate('lost-publish', 'true'));
    const before = await createJob(publisher, template);
    const feed = socketTo(waiter, '/v1/ufdl-agent/events');
    const toldFeed = receiveJson<FeedMessage>(feed, 90_000);
    await opened(feed);
    const waiting = api(waiter.url, 'POST', '/v1/jobs/list', {
      token: waiter.adminToken,
      json: { expressions: [{ type: 'compare', field: 'pk', operator: '>', value: before }] },
      headers: { 'x-ufdl-wait': '60' },
    });
    await until(async () => (await metric(waiter, 'ufdl_server_list_waiting', '')) === 1, 30_000, 'the list to wait');

    // Every try to publish "a job became acquirable" is cut on its way to the database: the job is
    // committed, and no replica is told of it.
    proxy.resetWhenSent('"e":"acquirable"');
    const made = await createJob(publisher, template);

    // The waiting node gets the job by the catch-up, not when its wait runs out.
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect((answer.body as { pk: number }[]).map((j) => j.pk)).toEqual([made]);
    expect(await metric(waiter, 'ufdl_server_list_wakeups_total', 'kind="recheck"')).toBe(1);
    expect(proxy.stats.resetsWhenSent).toBeGreaterThan(0);
    await until(() => toldFeed.messages.some((m) => m.type === 'resync'), 30_000, 'the dashboard to be told to load again');
  }, 180_000);

  it("tells the others to catch up, so a watcher on another replica learns of the transition", async () => {
    const url = new URL(await cluster.get().createDatabase('resync_publish_2'));
    const { a: replicaA, b: publisher, proxy } = await replicaBehindProxy(url);
    const template = await importTemplate(publisher, shellTemplate('lost-publish', 'true'));
    const job = await createJob(publisher, template);
    const watcher = socketTo(replicaA.server, `/v1/jobs/${job}`);
    const told = receiveJson<JobNotification>(watcher, 90_000);
    await opened(watcher);

    // The cancel is committed; every try to publish its transition is cut.
    proxy.resetWhenSent('"e":"transition"');
    expect((await api(publisher.url, 'DELETE', `/v1/jobs/${job}/cancel`, { token: publisher.adminToken })).status).toBeLessThan(300);

    const [first] = await told.received(1);
    expect(first).toMatchObject({ pk: job, transition: 'cancel' });
    expect(proxy.stats.resetsWhenSent).toBeGreaterThan(0);
  }, 180_000);
});
