/**
 * Web-socket watching: against the real embedded server (messages in order, catch-up, refusal of an
 * unknown job) and against a small `ws` peer that drops connections, refuses the header so that the
 * `?token=` fallback is used, and sends a frame that is not a notification.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocketServer } from 'ws';
import { UfdlClient } from '../../src/client/api.js';
import type { WatchError } from '../../src/client/watch.js';
import type { JobNotification } from '../../src/protocol/wire.js';
import { sendJson, startPeer } from './peer.js';
import { startWorld } from './setup.js';
import { until } from '../helpers/wait.js';

describe('watchJob against the embedded server', () => {
  it('should receive acquire, start, progress with its data, and finish, in order', async () => {
    const world = await startWorld();
    const worker = await world.worker();
    const nodePk = await world.register(worker);
    const pk = await world.createJob();
    const messages: JobNotification[] = [];
    const errors: WatchError[] = [];
    let opened = 0;
    const watch = world.admin.watchJob(pk, (m) => messages.push(m), { onError: (e) => errors.push(e), onOpen: () => opened++ });
    onTestFinished(() => watch.close());
    await until(() => watch.connected, 5000, 'the socket to open');
    expect(opened).toBe(1);

    await worker.acquireJob(pk);
    await worker.startJob(pk);
    await worker.progressJob(pk, 0.5, { epoch: 3, loss: 0.25 });
    await worker.finishJob(pk);
    await until(() => messages.length >= 4, 5000, 'four messages');

    expect(messages.map((m) => m.transition)).toEqual(['acquire', 'start', 'progress', 'finish']);
    expect(messages.every((m) => m.pk === pk)).toBe(true);
    expect(messages[0]!.node).toBe(nodePk);
    expect(messages[2]).toMatchObject({ progress: 0.5, transition_data: { epoch: 3, loss: 0.25 } });
    expect(errors).toEqual([]);
    watch.close();
    expect(watch.connected).toBe(false);
  });

  it('should get the catch-up message for a job that has started', async () => {
    const world = await startWorld();
    const worker = await world.worker();
    const pk = await world.startedJob(worker);
    const messages: JobNotification[] = [];
    const watch = worker.watchJob(pk, (m) => messages.push(m));
    onTestFinished(() => watch.close());
    await until(() => messages.length === 1, 5000, 'the catch-up message');
    expect(messages[0]).toMatchObject({ transition: 'progress', pk, transition_data: {} });
  });

  it('should report the refusal of an unknown job through onError and keep trying until closed', async () => {
    const world = await startWorld();
    const errors: WatchError[] = [];
    const watch = world.admin.watchJob(4242, () => {}, { onError: (e) => errors.push(e), reconnectBaseDelayMs: 20, reconnectMaxDelayMs: 50 });
    await until(() => errors.length >= 3, 5000, 'three refusals');
    watch.close();
    expect(errors[0]).toMatchObject({ kind: 'refused', status: 404, attempt: 1 });
    expect(errors[2]!.attempt).toBe(3);
    const count = errors.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(errors.length).toBe(count);
  });

  it('should give up after maxAttempts when asked to', async () => {
    const world = await startWorld();
    let gaveUp: WatchError | undefined;
    const watch = world.admin.watchJob(4242, () => {}, { maxAttempts: 2, reconnectBaseDelayMs: 10, onGiveUp: (e) => (gaveUp = e) });
    onTestFinished(() => watch.close());
    await until(() => gaveUp !== undefined, 5000, 'giving up');
    expect(gaveUp).toMatchObject({ kind: 'refused', attempt: 2 });
  });

  it('should be closed by client.close()', async () => {
    const world = await startWorld();
    const pk = await world.createJob();
    const client = world.client();
    const watch = client.watchJob(pk, () => {});
    await until(() => watch.connected, 5000, 'the socket to open');
    client.close();
    expect(watch.connected).toBe(false);
  });
});

describe('watchJob against a ws peer', () => {
  it('should fall back to ?token= when the header is refused, reconnect after a drop, and skip bad frames', async () => {
    const wss = new WebSocketServer({ noServer: true });
    const upgrades: Array<{ url: string; auth: string | undefined }> = [];
    const peer = await startPeer((_req, res) => sendJson(res, 404, { detail: 'Not found.' }));
    onTestFinished(() => new Promise<void>((r) => wss.close(() => r())));
    peer.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = req.url ?? '';
      upgrades.push({ url, auth: req.headers.authorization });
      if (!url.includes('token=')) {
        // A server that only reads the query string: refuse header-only attempts.
        socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const n = upgrades.filter((u) => u.url.includes('token=')).length;
        if (n === 1) {
          ws.send('not json');
          ws.send(JSON.stringify({ transition: 'start', description: '', pk: 8, progress: 0, cancelled: false, node: 1, transition_data: {} }));
          setTimeout(() => ws.terminate(), 50); // a dropped connection
        } else {
          ws.send(JSON.stringify({ transition: 'finish', description: '', pk: 8, progress: 1, cancelled: false, transition_data: {} }));
        }
      });
    });
    const client = new UfdlClient({ serverUrl: peer.url, username: 'u', password: 'p' });
    onTestFinished(() => client.close());
    const messages: JobNotification[] = [];
    const errors: WatchError[] = [];
    let opens = 0;
    const watch = client.watchJob(8, (m) => messages.push(m), {
      onError: (e) => errors.push(e),
      onOpen: () => opens++,
      reconnectBaseDelayMs: 20,
      reconnectMaxDelayMs: 50,
    });
    onTestFinished(() => watch.close());
    await until(() => messages.length === 2, 5000, 'two messages');
    expect(messages.map((m) => m.transition)).toEqual(['start', 'finish']);
    expect(opens).toBe(2);
    expect(upgrades[0]!.url).toBe('/v1/jobs/8');
    expect(upgrades[0]!.auth).toMatch(/^Bearer /);
    expect(upgrades[1]!.url).toMatch(/^\/v1\/jobs\/8\?token=[\w.-]+$/);
    expect(errors.map((e) => e.kind)).toEqual(['auth', 'bad-frame', 'network']);
    expect(errors.every((e) => !e.message.includes('token='))).toBe(true);
  });
});
