/**
 * Short commands against a peer that answers what no UFDL server would: one line and a named exit
 * status, never a stack trace.
 */
import { constants } from 'node:buffer';
import { beforeAll, describe, it } from 'vitest';
import { buildOnce } from '../helpers/build.js';
import { sendJson, startPeer } from '../client/peer.js';
import { cli, expectOneLineError } from './commands-support.js';

beforeAll(buildOnce, 240_000);

describe('a short command against a hostile server', () => {
  it('says that an answer of the wrong shape is not from a UFDL server (69), rather than misreading it', async () => {
    for (const wrong of [{}, [null], 'hello', { pk: 5 }]) {
      const peer = await startPeer((_req, res) => sendJson(res, 200, wrong));
      const env = { UFDL_AGENT_SERVER_URL: peer.url, UFDL_AGENT_SERVER_USERNAME: 'u', UFDL_AGENT_SERVER_PASSWORD: 'p', UFDL_AGENT_SERVER_TOKEN_CACHE: 'false' };
      for (const args of [['jobs'], ['cancel', '5'], ['outputs', '5'], ['download', '5', 'x', '-o', '/nonexistent/x'], ['logs', '5']]) {
        const result = await cli(args, { env });
        expectOneLineError(result, 69, /^ufdl-agent: the server at .* does not answer like a UFDL server \((POST \/v1\/jobs\/list|GET \/v1\/jobs\/5)\): expected (a list of jobs|a job)/);
      }
    }
  }, 120_000);

  it('refuses a JSON answer too large to be read as text (69), without holding it or dying', async () => {
    const spaces = Buffer.alloc(1 << 20, 0x20);
    const peer = await startPeer((_req, res) => {
      // Valid JSON, once it ends: spaces, then an empty list, past the longest string node can make.
      res.writeHead(200, { 'content-type': 'application/json' });
      let left = Math.ceil(constants.MAX_STRING_LENGTH / spaces.length) + 1;
      const pump = (): void => {
        while (left > 0) {
          left--;
          if (!res.write(spaces)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end('[]');
      };
      res.on('error', () => {});
      pump();
    });
    const env = { UFDL_AGENT_SERVER_URL: peer.url, UFDL_AGENT_SERVER_USERNAME: 'u', UFDL_AGENT_SERVER_PASSWORD: 'p', UFDL_AGENT_SERVER_TOKEN_CACHE: 'false' };
    const result = await cli(['jobs'], { env, timeoutMs: 120_000 });
    expectOneLineError(result, 69, /^ufdl-agent: the server at .* does not answer like a UFDL server \(POST \/v1\/jobs\/list\): an answer larger than \d+ MiB$/);
  }, 150_000);
});
