/**
 * Following a live log against a small `ws` peer that misbehaves on purpose: a control frame that is
 * not one, and a server that refuses the token of the log socket. Either ends the follow with an
 * error the caller hears, never an exception thrown out of the socket's handlers or a reconnect loop
 * that never ends.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocketServer } from 'ws';
import { UfdlClient } from '../../src/client/api.js';
import { ClientError } from '../../src/client/errors.js';
import { sendJson, startPeer, type Peer } from './peer.js';

/** A peer whose log socket is `onUpgrade`'s to answer. */
async function logPeer(onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer, wss: WebSocketServer) => void): Promise<Peer> {
  const wss = new WebSocketServer({ noServer: true });
  onTestFinished(() => new Promise<void>((r) => wss.close(() => r())));
  const peer = await startPeer((_req, res) => sendJson(res, 404, { detail: 'Not found.' }));
  peer.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => onUpgrade(req, socket, head, wss));
  return peer;
}

/** Answer the upgrade request with a plain HTTP `status` instead of a web-socket. */
function answerPlainly(socket: Duplex, status: number, reason: string, body = '', headers: Record<string, string> = {}): void {
  const head = Object.entries({ ...headers, 'content-length': String(Buffer.byteLength(body)) }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${reason}\r\n${head}\r\n${body}`);
}

/** Upgrade, then send a whole ended log of `text`. */
function serveEndedLog(req: IncomingMessage, socket: Duplex, head: Buffer, wss: WebSocketServer, text: string): void {
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.send(JSON.stringify({ type: 'start', offset: 0, length: text.length, complete: true, max_bytes: null }));
    ws.send(Buffer.from(text));
    ws.send(JSON.stringify({ type: 'end', length: text.length }));
  });
}

/** A client of `peer`, closed with the test. */
function clientOf(peer: Peer): UfdlClient {
  const client = new UfdlClient({ serverUrl: peer.url, username: 'u', password: 'p' });
  onTestFinished(() => client.close());
  return client;
}

/** Follow job 5's log; resolves with the first fatal error, or with `ended` when the log ends. */
function follow(client: UfdlClient): Promise<{ error?: Error; bytes: string; problems: number }> {
  return new Promise((resolve) => {
    let bytes = '';
    let problems = 0;
    const f = client.followLog(5, 0, {
      onBytes: (b) => (bytes += b.toString()),
      onEnd: () => resolve({ bytes, problems }),
      onError: (error, fatal) => {
        problems++;
        if (fatal) resolve({ error, bytes, problems });
      },
    });
    onTestFinished(() => f.close());
  });
}

describe('followLog against a hostile peer', () => {
  it('should end with a protocol error, not throw, on a control frame that is not JSON or not a log frame', async () => {
    for (const bad of ['not json', 'null', JSON.stringify({ type: 'dropped' })]) {
      const peer = await logPeer((req, socket, head, wss) =>
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.send(JSON.stringify({ type: 'start', offset: 0, length: 3, complete: false, max_bytes: null }));
          ws.send(Buffer.from('abc'));
          ws.send(bad);
        }),
      );
      const client = clientOf(peer);
      const result = await follow(client);
      expect(result.bytes, bad).toBe('abc');
      expect(result.error, bad).toBeInstanceOf(ClientError);
      expect((result.error as ClientError).kind, bad).toBe('protocol');
    }
  });

  it('should renew a refused token once, then give up with kind auth instead of reconnecting forever', async () => {
    let upgrades = 0;
    const peer = await logPeer((_req, socket) => {
      upgrades++;
      answerPlainly(socket, 401, 'Unauthorized', '{"detail":"Given token not valid for any token type......"}', { 'content-type': 'application/json' });
    });
    const client = clientOf(peer);
    const result = await follow(client);
    expect(result.error).toBeInstanceOf(ClientError);
    expect((result.error as ClientError).kind).toBe('auth');
    expect(upgrades).toBe(2);
    // The token was renewed between the two attempts.
    expect(peer.seen.filter((r) => r.path.startsWith('/v1/auth/')).length).toBe(2);
  });
});

describe('followLog through a proxy that does not pass web-sockets', () => {
  // A proxy may refuse the upgrade (426, 405, 501) or pass the request on as a plain GET, which the
  // server answers with the log's bytes (200). Reconnecting cannot change that answer.
  for (const [status, reason, body] of [
    [426, 'Upgrade Required', '<html>upgrade required</html>'],
    [405, 'Method Not Allowed', 'no'],
    [501, 'Not Implemented', 'websockets are not supported'],
    [200, 'OK', 'the log bytes'],
    [301, 'Moved Permanently', ''],
  ] as const) {
    it(`should give up at once, saying so, when the upgrade is answered ${status}`, async () => {
      let upgrades = 0;
      const peer = await logPeer((_req, socket) => {
        upgrades++;
        const location: Record<string, string> = status === 301 ? { location: 'https://elsewhere.test/v1/jobs/5/log' } : {};
        answerPlainly(socket, status, reason, body, { ...location, 'content-type': 'text/html' });
      });
      const client = clientOf(peer);
      const result = await follow(client);
      expect(result.error).toBeInstanceOf(ClientError);
      expect((result.error as ClientError).status).toBe(status);
      expect(result.error!.message).toContain(`HTTP ${status} instead of upgrading to a web-socket`);
      if (status === 301) expect(result.error!.message).toContain('a redirect to https://elsewhere.test/v1/jobs/5/log, which is not followed');
      expect(result.problems).toBe(1);
      expect(upgrades).toBe(1);
    });
  }

  it('should keep reconnecting after a 503 (a server restarting), a 429 or a 408', async () => {
    const answers = [503, 429, 408];
    const peer = await logPeer((req, socket, head, wss) => {
      const status = answers.shift();
      if (status !== undefined) answerPlainly(socket, status, 'Busy');
      else serveEndedLog(req, socket, head, wss, 'ok');
    });
    const result = await follow(clientOf(peer));
    expect(result.error).toBeUndefined();
    expect(result.bytes).toBe('ok');
    expect(result.problems).toBe(3);
  });
});

describe('followLog across a reset while disconnected', () => {
  it("starts the new run's log from 0, telling onReset, when the old cursor is past its end (416)", async () => {
    const offsets: string[] = [];
    const peer = await logPeer((req, socket, head, wss) => {
      const offset = new URL(req.url!, 'http://x').searchParams.get('offset')!;
      offsets.push(offset);
      if (offsets.length === 1) {
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.send(JSON.stringify({ type: 'start', offset: 0, length: 6, complete: false, max_bytes: null }));
          ws.send(Buffer.from('abcdef'), () => ws.terminate());
        });
        return;
      }
      if (offset !== '0') {
        answerPlainly(socket, 416, 'Range Not Satisfiable', JSON.stringify({ detail: 'offset 6 is past the end of the log (2 bytes)' }), { 'content-type': 'application/json' });
        return;
      }
      serveEndedLog(req, socket, head, wss, 'xy');
    });
    const client = clientOf(peer);
    const seen: string[] = [];
    const fatal = await new Promise<Error | undefined>((resolve) => {
      const f = client.followLog(5, 0, {
        onBytes: (b, at) => seen.push(`${at}:${b.toString()}`),
        onReset: () => seen.push('reset'),
        onEnd: () => resolve(undefined),
        onError: (error, isFatal) => {
          if (isFatal) resolve(error);
        },
      });
      onTestFinished(() => f.close());
    });
    expect(fatal).toBeUndefined();
    expect(seen).toEqual(['0:abcdef', 'reset', '0:xy']);
    expect(offsets).toEqual(['0', '6', '0']);
  });
});
