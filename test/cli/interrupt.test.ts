/**
 * Ctrl-C (SIGINT) or SIGTERM during `ufdl-agent download`: the command stops, says so in one line,
 * and leaves no partial file behind (the download is written to a hidden `.part` file beside the
 * destination, renamed only when complete).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/build.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';
import { sendJson, startPeer } from '../client/peer.js';
import { expectOneLineError, startCli } from './commands-support.js';

beforeAll(buildOnce, 240_000);

describe('an interrupted download', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('stops on %s and leaves no partial file', async (signal) => {
    const peer = await startPeer((req, res) => {
      if (req.path === '/v1/jobs/5') {
        return sendJson(res, 200, { pk: 5, node: null, start_time: null, end_time: null, error_reason: null, is_cancelled: false, parent: null, outputs: [{ pk: 1, name: 'big', type: 'BLOB' }] });
      }
      if (req.path === '/v1/jobs/5/outputs/big/BLOB') {
        // Half the body, then nothing: the download waits, its partial file on disk.
        res.writeHead(200, { 'content-type': 'application/data', 'content-length': 2 << 20 });
        res.write(Buffer.alloc(1 << 20, 1));
        return;
      }
      sendJson(res, 404, { detail: 'Not found.' });
    });
    const dir = await tempDir('ufdl-download-');
    const env = { UFDL_AGENT_SERVER_URL: peer.url, UFDL_AGENT_SERVER_USERNAME: 'u', UFDL_AGENT_SERVER_PASSWORD: 'p', UFDL_AGENT_SERVER_TOKEN_CACHE: 'false' };
    const run = startCli(['download', '5', 'big', '-o', join(dir, 'big')], { env });
    await until(async () => (await readdir(dir)).some((name) => name.endsWith('.part')), 20_000, 'the partial file');
    run.child.kill(signal);
    const result = await run.result;
    expectOneLineError(result, 1, /^ufdl-agent: interrupted: GET \/v1\/jobs\/5\/outputs\/big\/BLOB$/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('stops `logs` on a server without live logs, and leaves no temporary copy of the log', async () => {
    const peer = await startPeer((req, res) => {
      if (req.path === '/v1/jobs/5') {
        return sendJson(res, 200, { pk: 5, node: 1, start_time: '2026-01-01T00:00:00Z', end_time: '2026-01-01T00:01:00Z', error_reason: null, is_cancelled: false, parent: null, outputs: [{ pk: 1, name: 'log', type: 'Text' }] });
      }
      if (req.path === '/v1/jobs/5/outputs/log/Text') {
        res.writeHead(200, { 'content-type': 'application/data', 'content-length': 2 << 20 });
        res.write(Buffer.alloc(1 << 20, 0x41));
        return;
      }
      sendJson(res, 404, { detail: 'Not found.' });
    });
    const tmp = await tempDir('ufdl-logs-tmp-');
    const env = { UFDL_AGENT_SERVER_URL: peer.url, UFDL_AGENT_SERVER_USERNAME: 'u', UFDL_AGENT_SERVER_PASSWORD: 'p', UFDL_AGENT_SERVER_TOKEN_CACHE: 'false', TMPDIR: tmp };
    const run = startCli(['logs', '5'], { env });
    const partial = async () => {
      for (const sub of await readdir(tmp)) if ((await readdir(join(tmp, sub))).some((name) => name.endsWith('.part'))) return true;
      return false;
    };
    await until(partial, 20_000, 'the partial copy of the log');
    run.child.kill('SIGINT');
    const result = await run.result;
    expectOneLineError(result, 1, /^ufdl-agent: interrupted: GET \/v1\/jobs\/5\/outputs\/log\/Text$/);
    expect(await readdir(tmp)).toEqual([]);
  });
});
