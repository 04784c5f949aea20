/**
 * Slow and greedy clients against a real `serve` process with a 1,024 file-descriptor limit (issue 9,
 * item 3): requests whose headers or body never finish, web-socket upgrades that never complete and
 * connections that send nothing are closed after the configured timeouts; over a thousand silent
 * connections from one address cannot starve the server, and a normal request from another address is
 * still answered. The hostile connections come from 127.0.0.2 and 127.0.0.3, the normal one from
 * 127.0.0.1 (all loopback on Linux).
 */
import { spawn } from 'node:child_process';
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { buildOnce } from '../helpers/build.js';
import { freePort } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

beforeAll(buildOnce, 180_000);

interface SlowClient {
  socket: Socket;
  /** Everything the server sent. */
  received(): string;
  /** Resolves when the server closed the connection (or it failed). */
  closed: Promise<void>;
}

function open(port: number, from: string, first = ''): Promise<SlowClient> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: from });
    let data = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (data += chunk));
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => {});
    socket.once('connect', () => {
      if (first !== '') socket.write(first);
      resolve({ socket, received: () => data, closed });
    });
    socket.once('error', reject);
  });
}

async function startServe(env: Record<string, string>): Promise<{ url: string; port: number }> {
  const dataDir = await tempDir('ufdl-slow-');
  const port = await freePort();
  // A descriptor limit that a few hundred connections could exhaust, as on a small host.
  const child = spawn('/bin/sh', ['-c', 'ulimit -n 1024 && exec "$0" "$@"', process.execPath, 'dist/cli/main.js', 'serve', '--data', dataDir, '--port', String(port)], {
    env: { ...process.env, UFDL_ADMIN_PASSWORD: 'slow-clients-admin', UFDL_AGENT_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}`);
    if (await fetch(`${url}/livez`).then((r) => r.ok, () => false)) return { url, port };
    if (Date.now() > deadline) throw new Error('serve did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A GET on a connection of its own (not one kept alive from an earlier request). */
function getOnNewConnection(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false, localAddress: '127.0.0.1' }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
  });
}

/** Within `ms`, or fail naming what did not happen. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen in ${ms} ms`)), ms).unref())]);
}

/** More connections than the server has descriptors for. */
const HOSTILE = 1300;

describe('slow clients', () => {
  it('are closed after the headers and idle timeouts, web-socket upgrades included', { timeout: 120_000 }, async () => {
    const { port } = await startServe({ UFDL_AGENT_SERVE_HEADERS_TIMEOUT: '2', UFDL_AGENT_SERVE_IDLE_TIMEOUT: '5' });
    const from = '127.0.0.3';
    const partialHeaders = await Promise.all(Array.from({ length: 40 }, () => open(port, from, 'POST /v1/auth/obtain HTTP/1.1\r\nHost: x\r\n')));
    const upgrades = await Promise.all(
      Array.from({ length: 40 }, () => open(port, from, 'GET /v1/jobs/1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n')),
    );
    const partialBodies = await Promise.all(
      Array.from({ length: 40 }, () =>
        open(port, from, 'POST /v1/auth/obtain HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"username": "adm'),
      ),
    );
    const silent = await Promise.all(Array.from({ length: 40 }, () => open(port, from)));
    // A client that trickles its headers a byte at a time never finishes them within the timeout.
    const trickler = await open(port, from, 'GET /livez HTTP/1.1\r\nX-Slow: ');
    const trickle = setInterval(() => trickler.socket.write('a'), 200);
    onTestFinished(() => clearInterval(trickle));

    const all = [...partialHeaders, ...upgrades, ...partialBodies, ...silent, trickler];
    await within(Promise.all(all.map((c) => c.closed)), 30_000, 'the server closing every slow connection');
    for (const client of [...partialHeaders, ...upgrades, trickler]) {
      expect(client.received()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*\r\n\r\n\{"detail":"The request's headers did not arrive within serve.headers_timeout"\}$/);
    }
    // A connection that sent nothing has not sent its headers either.
    for (const client of silent) expect(client.received()).toMatch(/^HTTP\/1\.1 408 /);
    for (const client of partialBodies) expect(client.received()).toBe('');
  });

  it('cannot starve the server: 1,300 connections from one address, and a normal request is still answered', { timeout: 120_000 }, async () => {
    const { url, port } = await startServe({ UFDL_AGENT_SERVE_HEADERS_TIMEOUT: '60', UFDL_AGENT_SERVE_IDLE_TIMEOUT: '60' });
    const hostile: SlowClient[] = [];
    onTestFinished(() => {
      for (const c of hostile) c.socket.destroy();
    });
    for (let i = 0; i < HOSTILE; i++) hostile.push(await open(port, '127.0.0.2', 'GET /livez HTTP/1.1\r\nHost: x\r\n'));

    const answer = await within(getOnNewConnection(`${url}/livez`), 15_000, 'an answer to a normal request');
    expect(answer).toEqual({ status: 200, body: '{"status":"ok"}' });
    // The connections over the per-address cap were answered with a JSON 429 and closed; the cap's
    // worth are held (until the headers timeout).
    const refused = () => hostile.filter((c) => c.received().startsWith('HTTP/1.1 429 '));
    await within(
      (async () => {
        while (refused().length < HOSTILE - 256) await new Promise((r) => setTimeout(r, 50));
      })(),
      20_000,
      'a 429 for every connection over the cap',
    );
    expect(hostile.filter((c) => c.received() === '' && !c.socket.destroyed)).toHaveLength(256);
    expect(refused()[0]!.received()).toContain('{"detail":"Too many connections from 127.0.0.2: at most 256 at once (serve.max_connections_per_address)"}');
  });
});
