/**
 * `ufdl-agent logs PK` reads the log piece by piece (`printLogSoFar`): against a peer whose pieces
 * do not begin where they were asked to, it stops with a protocol error instead of printing the same
 * bytes again and again, forever.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { UfdlClient } from '../../src/client/api.js';
import { ClientError } from '../../src/client/errors.js';
import { printLogSoFar } from '../../src/cli/live-log.js';
import { LOG_HEADERS } from '../../src/protocol/live-log.js';
import { sendJson, startPeer } from '../client/peer.js';

describe('printLogSoFar against a hostile peer', () => {
  it('should refuse a piece that begins before the offset asked for', async () => {
    const piece = Buffer.from('the same line\n');
    const peer = await startPeer((req, res) => {
      if (!req.path.startsWith('/v1/jobs/5/log?')) return sendJson(res, 404, { detail: 'Not found.' });
      // Always the first bytes, whatever the offset asked for, of a log that is never done.
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': piece.length,
        [LOG_HEADERS.offset]: '0',
        [LOG_HEADERS.length]: String(1 << 30),
        [LOG_HEADERS.complete]: 'false',
      });
      res.end(piece);
    });
    const client = new UfdlClient({ serverUrl: peer.url, username: 'u', password: 'p' });
    onTestFinished(() => client.close());
    let written = 0;
    const sink = {
      write: (chunk: Buffer | string) => {
        written += chunk.length;
        // Past any answer the peer could honestly have given: stop the loop so the test can fail.
        if (written > 100 * piece.length) client.close();
        return true;
      },
    };
    const err = await printLogSoFar(client, 5, sink).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).kind).toBe('protocol');
    expect(written).toBe(piece.length);
  });
});
