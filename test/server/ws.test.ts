/**
 * The web-socket notification channel `ws://…/v1/jobs/{pk}` (docs/COMPATIBILITY.md, bug B15):
 * message shape and order, catch-up on connect, authentication, refusal of unknown jobs.
 */
import http from 'node:http';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import type { JobNotification } from '../../src/protocol/wire.js';
import { startWithFixtures, type Fixtures } from '../helpers/fixtures.js';
import { receiveJson } from '../helpers/ws-messages.js';

interface Watcher {
  messages: JobNotification[];
  /** Resolve once `count` messages have arrived (fails after a generous deadline). */
  received(count: number): Promise<JobNotification[]>;
  socket: WebSocket;
}

function wsUrl(f: Fixtures, path: string): string {
  return `${f.url.replace(/^http/, 'ws')}${path}`;
}

async function watch(f: Fixtures, job: number, auth: { token?: string; header?: string } | 'none' = {}): Promise<Watcher> {
  const token = auth === 'none' ? undefined : (auth.token ?? (auth.header ? undefined : await f.adminToken()));
  const query = token ? `?token=${encodeURIComponent(token)}` : '';
  const headers = auth !== 'none' && auth.header ? { authorization: `Bearer ${auth.header}` } : undefined;
  const socket = new WebSocket(wsUrl(f, `/v1/jobs/${job}${query}`), headers ? { headers } : {});
  onTestFinished(() => socket.terminate());
  const { messages, received } = receiveJson<JobNotification>(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return { messages, received, socket };
}

/** Try to connect; resolve with the HTTP status of a refused handshake and its body. */
function refused(url: string, headers?: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, headers ? { headers } : {});
    socket.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    socket.on('open', () => {
      socket.terminate();
      reject(new Error('the handshake was accepted'));
    });
    socket.on('error', () => {});
  });
}

describe('notifications', () => {
  it('a watcher sees acquire, start, progress with its data, and finish, in order and in the reference’s shape', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job({ description: 'watched' });
    const w = await watch(f, job);
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    await f.call('POST', `/v1/jobs/${job}/start`, { node, json: { send_notification: 'email' } });
    await f.call('POST', `/v1/jobs/${job}/progress/0.25`, { node, json: { msg: 'hello', n: [1, 2] } });
    await f.call('POST', `/v1/jobs/${job}/progress/0.5`, { node });
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { success: true, send_notification: 'email' } });
    const messages = await w.received(5);
    expect(messages.map((m) => m.transition)).toEqual(['acquire', 'start', 'progress', 'progress', 'finish']);
    expect(messages[2]).toEqual({
      transition: 'progress',
      description: 'watched',
      pk: job,
      progress: 0.25,
      cancelled: false,
      node,
      transition_data: { msg: 'hello', n: [1, 2] },
    });
    expect(Object.keys(messages[2]!)).toEqual(['transition', 'description', 'pk', 'progress', 'cancelled', 'node', 'transition_data']);
    expect(messages[3]!.transition_data).toEqual({});
    expect(messages[4]).toEqual({ transition: 'finish', description: 'watched', pk: job, progress: 0.5, cancelled: false, node, transition_data: {} });
  });

  it('an error carries `error`; reset keeps `node`; release, abort drop it; cancel says cancelled', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job();
    const w = await watch(f, job);
    await f.startAs(node, job);
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { error: 'exploded' } });
    await f.call('DELETE', `/v1/jobs/${job}/reset`, { node });
    await f.call('DELETE', `/v1/jobs/${job}/release`, { node });
    await f.startAs(node, job);
    await f.call('DELETE', `/v1/jobs/${job}/abort`);
    await f.call('DELETE', `/v1/jobs/${job}/cancel`);
    const messages = await w.received(9);
    expect(messages.map((m) => m.transition)).toEqual(['acquire', 'start', 'error', 'reset', 'release', 'acquire', 'start', 'abort', 'cancel']);
    const [, , error, reset, release, , , abort, cancel] = messages;
    expect(error).toMatchObject({ node, error: 'exploded', cancelled: false });
    expect(Object.keys(error!)).toEqual(['transition', 'description', 'pk', 'progress', 'cancelled', 'node', 'error', 'transition_data']);
    expect(reset).toMatchObject({ node });
    expect(reset).not.toHaveProperty('error');
    expect(release).not.toHaveProperty('node');
    expect(abort).not.toHaveProperty('node');
    expect(cancel).toMatchObject({ cancelled: true });
    // The silent clean-up finish after the abort sends nothing.
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} });
    await f.call('GET', `/v1/jobs/${job}`);
    expect(w.messages).toHaveLength(9);
  });

  it('every watcher of the job gets each message; watchers of other jobs get none', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const [job, other] = f.jobs(2);
    const a = await watch(f, job!);
    const b = await watch(f, job!);
    const c = await watch(f, other!);
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    await a.received(1);
    await b.received(1);
    // A transition on the other job arrives for c only; by then c would also have seen job's.
    await f.call('GET', `/v1/jobs/${other}/acquire`, { node });
    const seen = await c.received(1);
    expect(seen.map((m) => m.pk)).toEqual([other]);
    expect(a.messages.map((m) => m.pk)).toEqual([job]);
  });

  it('closes every watcher of a hard-deleted job with 1008 "job not found"; a soft delete closes none', async () => {
    const f = await startWithFixtures();
    const job = f.job();
    const other = f.job();
    const watchers = [await watch(f, job), await watch(f, job)];
    const ofOther = await watch(f, other);
    const closes = watchers.map((w) => new Promise<[number, string]>((resolve) => w.socket.once('close', (code, reason) => resolve([code, reason.toString()]))));
    expect((await f.call('DELETE', `/v1/jobs/${other}`)).status).toBe(204);
    expect((await f.call('DELETE', `/v1/jobs/${job}/hard`)).status).toBe(200);
    expect(await Promise.all(closes)).toEqual([
      [1008, 'job not found'],
      [1008, 'job not found'],
    ]);
    // The soft-deleted job's watcher is still served: its job is still there (reinstate brings it back).
    expect(ofOther.socket.readyState).toBe(WebSocket.OPEN);
    await f.call('DELETE', `/v1/jobs/${other}/cancel`);
    expect((await ofOther.received(1)).map((m) => m.transition)).toEqual(['cancel']);
  });

  it('ignores frames sent by the client', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job();
    const w = await watch(f, job);
    w.socket.send('{"notification_override": {}}');
    w.socket.send('not json at all');
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    expect((await w.received(1))[0]!.transition).toBe('acquire');
  });
});

describe('catch-up on connect', () => {
  it('sends nothing for a CREATED job', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job();
    const w = await watch(f, job);
    // The first message is the acquire, not a catch-up.
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    expect((await w.received(1)).map((m) => m.transition)).toEqual(['acquire']);
  });

  it('replays progress for STARTED, finish for FINISHED, error for ERRORED, cancel for CANCELLED — to the new watcher only', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const [started, finished, errored, cancelled] = f.jobs(4);
    await f.startAs(node, started!);
    await f.call('POST', `/v1/jobs/${started}/progress/0.75`, { node, json: { step: 3 } });
    const early = await watch(f, started!);
    expect(await early.received(1)).toEqual([
      { transition: 'progress', description: '', pk: started, progress: 0.75, cancelled: false, node, transition_data: {} },
    ]);
    const second = await watch(f, started!);
    expect((await second.received(1))[0]!.transition).toBe('progress');
    // The first watcher is not sent the second one's catch-up.
    await f.call('GET', `/v1/jobs/${started}`);
    expect(early.messages).toHaveLength(1);

    const node2 = f.node();
    await f.call('POST', `/v1/jobs/${started}/finish`, { node, json: {} });
    await f.startAs(node2, finished!);
    await f.call('POST', `/v1/jobs/${finished}/finish`, { node: node2, json: {} });
    expect((await (await watch(f, finished!)).received(1))[0]).toMatchObject({ transition: 'finish', node: node2 });

    await f.startAs(node2, errored!);
    await f.call('POST', `/v1/jobs/${errored}/finish`, { node: node2, json: { error: 'bad' } });
    expect((await (await watch(f, errored!)).received(1))[0]).toMatchObject({ transition: 'error', error: 'bad' });

    await f.call('DELETE', `/v1/jobs/${cancelled}/cancel`);
    expect((await (await watch(f, cancelled!)).received(1))[0]).toMatchObject({ transition: 'cancel', cancelled: true });
  });
});

describe('handshake', () => {
  it('B15: refuses a watcher without credentials (401) and with a bad token (401)', async () => {
    const f = await startWithFixtures();
    const job = f.job();
    const none = await refused(wsUrl(f, `/v1/jobs/${job}`));
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body).detail).toMatch(/\?token=/);
    expect((await refused(wsUrl(f, `/v1/jobs/${job}?token=garbage`))).status).toBe(401);
    expect((await refused(wsUrl(f, `/v1/jobs/${job}`), { authorization: 'Bearer garbage' })).status).toBe(401);
  });

  it('B15: accepts the token in the Authorization header as well as in ?token=, for any user', async () => {
    const f = await startWithFixtures();
    const user = await f.user();
    const node = f.node();
    const job = f.job();
    const byHeader = await watch(f, job, { header: user.token });
    const byQuery = await watch(f, job, { token: user.token });
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    expect((await byHeader.received(1))[0]!.transition).toBe('acquire');
    expect((await byQuery.received(1))[0]!.transition).toBe('acquire');
  });

  it('allows anonymous watchers when allowAnonymousWebsocket is set', async () => {
    const f = await startWithFixtures({ allowAnonymousWebsocket: true });
    const node = f.node();
    const job = f.job();
    const w = await watch(f, job, 'none');
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    expect((await w.received(1))[0]!.transition).toBe('acquire');
  });

  it('refuses an unknown job with 404 before the upgrade; soft-deleted jobs can be watched', async () => {
    const f = await startWithFixtures();
    const token = await f.adminToken();
    const unknown = await refused(wsUrl(f, `/v1/jobs/9999?token=${token}`));
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body)).toEqual({ detail: 'Not found.' });
    const job = f.job();
    await f.call('DELETE', `/v1/jobs/${job}`);
    const w = await watch(f, job);
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node: f.node() });
    expect((await w.received(1))[0]!.transition).toBe('acquire');
  });

  it('answers a refused handshake with Connection: close, so a pooled connection is not reused', async () => {
    const f = await startWithFixtures();
    const job = f.job();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    onTestFinished(() => agent.destroy());
    const get = (headers: Record<string, string>, path = `/v1/jobs/${job}`) =>
      new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
        const req = http.get(`${f.url}${path}`, { agent, headers }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
        });
        req.on('error', reject);
      });
    const upgrade = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
    const token = await f.adminToken();
    // Refused by a hook (the error handler), and by the router (no such route).
    expect(await get(upgrade)).toEqual({ status: 401, connection: 'close' });
    expect(await get({ ...upgrade, authorization: `Bearer ${token}` }, '/v1/no-such-route')).toEqual({ status: 404, connection: 'close' });
    // The next request through the same pool gets a fresh connection and its answer, kept alive.
    expect(await get({ authorization: `Bearer ${token}` })).toEqual({ status: 200, connection: 'keep-alive' });
  });

  it('accepts the token as a subprotocol bearer.<token> (what browsers can send), and answers with a protocol offered', async () => {
    const f = await startWithFixtures();
    const job = f.job();
    const user = await f.user();
    const withName = new WebSocket(wsUrl(f, `/v1/jobs/${job}`), ['ufdl', `bearer.${user.token}`]);
    const alone = new WebSocket(wsUrl(f, `/v1/jobs/${job}`), [`bearer.${user.token}`]);
    // Both listened to at once: either may open first, and an 'open' nobody listens to is lost.
    await Promise.all(
      [withName, alone].map((socket) => {
        onTestFinished(() => socket.terminate());
        return new Promise<void>((resolve, reject) => {
          socket.once('open', resolve);
          socket.once('error', reject);
        });
      }),
    );
    // The token is not echoed when the client offered another protocol.
    expect(withName.protocol).toBe('ufdl');
    expect(alone.protocol).toBe(`bearer.${user.token}`);
    const seen = new Promise<JobNotification>((resolve) => withName.once('message', (d) => resolve(JSON.parse(d.toString()) as JobNotification)));
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node: f.node() });
    expect((await seen).transition).toBe('acquire');
    expect((await refused(wsUrl(f, `/v1/jobs/${job}`), { 'sec-websocket-protocol': 'ufdl, bearer.garbage' })).status).toBe(401);
  });

  it('still serves plain GET /v1/jobs/{pk} on the same path', async () => {
    const f = await startWithFixtures();
    const job = f.job();
    const res = await f.call('GET', `/v1/jobs/${job}`);
    expect(res.status).toBe(200);
    expect(res.body.pk).toBe(job);
  });
});
