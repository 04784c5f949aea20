/**
 * A replica whose listening connection is replaced catches up on the events it missed meanwhile:
 * while replica B is cut off from the database, replica A cancels a job B's watcher follows and creates one
 * B's waiting node would take. Once B listens again, with no further event, its watcher is told
 * where the job is now, its waiting list answers with the job made in the gap (a recheck, not its
 * wait running out), and its dashboards are told to load again.
 */
import WebSocket from 'ws';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { FeedMessage } from '../../../src/protocol/dashboard.js';
import type { JobNotification } from '../../../src/protocol/wire.js';
import { TcpProxy } from '../../faults/helpers/proxy.js';
import { createJob, importTemplate, shellTemplate } from '../../helpers/agent.js';
import { usePgCluster } from '../../helpers/postgres.js';
import { startReplicas } from '../../helpers/replicas.js';
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
  const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}${path}?token=${server.adminToken}`);
  onTestFinished(() => socket.terminate());
  return socket;
}

const opened = (socket: WebSocket) => new Promise<void>((resolve, reject) => socket.once('open', () => resolve()).once('error', reject));

describe('a replica whose listening connection is replaced', () => {
  it('tells its watchers, waiting nodes and dashboards what the others did in the gap', async () => {
    const url = new URL(await cluster.get().createDatabase('resync_1'));
    const { dataDir, replicas } = await startReplicas(1, [], { databaseUrl: url.toString() });
    const a = replicas[0]!.server;
    // B reaches the database through a proxy the test can cut: its listening connection with the
    // rest. A process of its own, as A: its statements block its event loop, and the proxy must run.
    const proxy = await TcpProxy.start({ port: Number(url.port) });
    onTestFinished(() => proxy.close());
    url.port = String(proxy.port);
    const served = await spawnServe(dataDir, await freePort(), {}, { databaseUrl: url.toString() });
    const b: Reachable = { url: served.url, adminToken: await loginAt(served.url, ADMIN_USER, ADMIN_PASSWORD) };

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
});
