/**
 * Web-sockets after the handshake (issue 9, items 3 and 9): a client's malformed frames cost one
 * short `info` line per connection, never an error-level line with a stack; a watcher that stops
 * answering pings is let go, one that answers stays.
 */
import { connect } from 'node:net';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { buildApp } from '../../src/server/app.js';
import type { ServerOptions } from '../../src/server/options.js';
import { api } from '../helpers/server.js';
import { until } from '../helpers/agent.js';
import { tempDir } from '../helpers/temp-dir.js';

const PASSWORD = 'ws-hygiene-admin-password';

/** A server in this process whose log lines are kept. */
async function serverWithLog(options: Partial<ServerOptions> = {}) {
  const dataDir = await tempDir('ufdl-ws-');
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const { app } = await buildApp({ dataDir, port: 0, adminPassword: PASSWORD, ...options }, logger);
  await app.listen({ host: '127.0.0.1', port: 0 });
  onTestFinished(async () => {
    await app.close();
  });
  const port = (app.server.address() as { port: number }).port;
  const url = `http://127.0.0.1:${port}`;
  const login = await api(url, 'POST', '/v1/auth/obtain', { json: { username: 'admin', password: PASSWORD } });
  const token = login.body.access as string;
  const template = await api(url, 'POST', '/v1/job-templates/import', {
    token,
    json: { name: 't', version: 1, scope: 'public', licence: 'MIT', specific: { job_type: 'Run', executor_class: 'x.Y', required_packages: '', parameters: {} } },
  });
  const job = await api(url, 'POST', `/v1/job-templates/${template.body.pk}/create-job`, { token, json: { input_values: {}, parameter_values: {} } });
  return { url, port, token, job: job.body.pk as number, lines };
}

/** A raw web-socket handshake, then `frames` written as they are; resolves when the server closes. */
function sendRawFrames(port: number, path: string, frames: Buffer[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n\r\n') && received.startsWith('HTTP/1.1 101')) {
        for (const frame of frames.splice(0)) socket.write(frame);
      }
    });
    socket.once('close', () => resolve(received));
    socket.once('connect', () =>
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      ),
    );
    setTimeout(() => reject(new Error('the server did not close the connection')), 20_000).unref();
  });
}

describe('malformed web-socket frames', () => {
  it('are logged once per connection at info, without a stack, never as errors', async () => {
    const s = await serverWithLog();
    const path = `/v1/jobs/${s.job}?token=${encodeURIComponent(s.token)}`;
    const unmasked = Buffer.from([0x81, 0x02, 0x68, 0x69]); // client frames must be masked
    const badOpcode = Buffer.from([0x83, 0x80, 1, 2, 3, 4]); // opcode 3 is reserved
    for (let i = 0; i < 5; i++) await sendRawFrames(s.port, path, [unmasked, badOpcode, unmasked]);
    await until(() => s.lines.filter((l) => l.msg === 'closed a web-socket after a malformed frame from the client').length === 5, 10_000, 'five log lines');
    const about = s.lines.filter((l) => JSON.stringify(l).includes('WS_ERR_') || l.level === 50);
    expect(about).toHaveLength(5);
    for (const line of about) {
      expect(line.level).toBe(30);
      expect(line).not.toHaveProperty('err');
      expect(JSON.stringify(line)).not.toContain('    at ');
      expect(line.code).toMatch(/^WS_ERR_/);
    }
  });
});

describe('silent web-socket watchers', () => {
  it('are let go when they stop answering pings; those that answer stay', { timeout: 120_000 }, async () => {
    // The idle timeout is also the ping interval. Not shorter: the setup's HTTP requests are held to
    // it too, and a loaded machine may take a second to answer a login.
    const s = await serverWithLog({ idleTimeoutSeconds: 4 });
    const url = `${s.url.replace(/^http/, 'ws')}/v1/jobs/${s.job}?token=${encodeURIComponent(s.token)}`;
    const deaf = new WebSocket(url, { autoPong: false });
    const polite = new WebSocket(url);
    onTestFinished(() => {
      deaf.terminate();
      polite.terminate();
    });
    await Promise.all([deaf, polite].map((w) => new Promise((resolve) => w.once('open', resolve))));
    const deafClosed = new Promise((resolve) => deaf.once('close', resolve));
    await deafClosed;
    // Several ping rounds later, the one that answers is still open.
    let pings = 0;
    polite.on('ping', () => pings++);
    await until(() => pings >= 3, 60_000, 'three pings to the polite watcher');
    expect(polite.readyState).toBe(WebSocket.OPEN);
  });

  it("are let go on the dashboard's feed too, so a dashboard that stopped reading is not held", { timeout: 120_000 }, async () => {
    // The feed pinged every 30 s but never ended a socket that did not answer: a client that stopped
    // reading held its connection, and up to 4 MiB of unsent frames, for as long as it liked.
    const s = await serverWithLog({ idleTimeoutSeconds: 4 });
    const url = `${s.url.replace(/^http/, 'ws')}/v1/ufdl-agent/events?token=${encodeURIComponent(s.token)}`;
    const deaf = new WebSocket(url, { autoPong: false });
    const polite = new WebSocket(url);
    onTestFinished(() => {
      deaf.terminate();
      polite.terminate();
    });
    await Promise.all([deaf, polite].map((w) => new Promise((resolve) => w.once('open', resolve))));
    await until(() => deaf.readyState === WebSocket.CLOSED, 60_000, 'the server to end the feed of a dashboard that does not answer pings');
    let pings = 0;
    polite.on('ping', () => pings++);
    await until(() => pings >= 3, 60_000, 'three pings to the polite dashboard');
    expect(polite.readyState).toBe(WebSocket.OPEN);
  });
});

describe('web-sockets of a user whose credentials are revoked', () => {
  it('are closed (1008) within an interval of a password change, on every channel; others stay open', { timeout: 120_000 }, async () => {
    // A socket is authenticated once, at its handshake: without a later check, a user whose password
    // was changed (or who was deactivated) went on receiving the jobs, the feed and the logs.
    const s = await serverWithLog({ idleTimeoutSeconds: 4 });
    const created = await api(s.url, 'POST', '/v1/users/create', { token: s.token, json: { username: 'rita', password: 'rita-password-1' } });
    expect(created.status, created.text).toBe(201);
    const rita = (await api(s.url, 'POST', '/v1/auth/obtain', { json: { username: 'rita', password: 'rita-password-1' } })).body.access as string;
    const templates = await api(s.url, 'POST', '/v1/job-templates/list', { token: rita, json: {} });
    const job = await api(s.url, 'POST', `/v1/job-templates/${templates.body[0].pk}/create-job`, { token: rita, json: { input_values: {}, parameter_values: {} } });
    expect(job.status, job.text).toBe(200);
    const ws = s.url.replace(/^http/, 'ws');
    const open = (path: string, token: string) => {
      const socket = new WebSocket(`${ws}${path}`, ['ufdl', `bearer.${token}`]);
      onTestFinished(() => socket.terminate());
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
      return { socket, closed, opened: new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)) };
    };
    const paths = [`/v1/jobs/${job.body.pk}`, '/v1/ufdl-agent/events', `/v1/jobs/${job.body.pk}/log`];
    const ritas = paths.map((path) => open(path, rita));
    const admins = paths.map((path) => open(path, s.token));
    await Promise.all([...ritas, ...admins].map((o) => o.opened));

    const changed = await api(s.url, 'POST', '/v1/users/rita/set-password', { token: s.token, json: { password: 'rita-password-2' } });
    expect(changed.status, changed.text).toBe(200);

    expect(await Promise.all(ritas.map((o) => o.closed))).toEqual([1008, 1008, 1008]);
    // The admin's sockets, answering their pings, have been through the same checks and stay.
    let pings = 0;
    admins[0]!.socket.on('ping', () => pings++);
    await until(() => pings >= 2, 60_000, "two more pings to the admin's socket");
    expect(admins.map((o) => o.socket.readyState)).toEqual([WebSocket.OPEN, WebSocket.OPEN, WebSocket.OPEN]);
  });
});
