/**
 * A hard delete removes the job's live log from the data directory. A follower caught between
 * finding a piece of that log and reading it finds the file gone: it must still be told that the
 * job is gone (1008 `job not found`), as an idle follower is, not have its socket dropped (1006),
 * which the dashboard takes as a network failure and answers by reconnecting for good.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';
import { startWithFixtures } from '../helpers/fixtures.js';
import { holdNext } from '../helpers/gated-live-log-store.js';
import { until } from '../helpers/wait.js';

vi.mock('../../src/server/live-log/store.js', async (original) => (await import('../helpers/gated-live-log-store.js')).gatedLiveLogStore(await original()));

it('tells a follower reading its log when the job is hard-deleted that the job is gone (1008), though the file went under its read', async () => {
  const f = await startWithFixtures();
  const node = f.node();
  const job = f.job();
  await f.startAs(node, job);
  const append = (offset: number, text: string) =>
    f.call('POST', `/v1/jobs/${job}/log?offset=${offset}&max_bytes=65536`, {
      node,
      body: new Uint8Array(Buffer.from(text)),
      headers: { 'content-type': 'application/octet-stream' },
    });
  expect((await append(0, 'first\n')).status).toBe(200);

  // The follower's first read of the log stops after it found the piece to read.
  const { gated, release: releaseRead } = holdNext('readPiece');
  onTestFinished(releaseRead);
  const socket = new WebSocket(`${f.url.replace(/^http/, 'ws')}/v1/jobs/${job}/log?offset=0&token=${encodeURIComponent(await f.adminToken())}`);
  onTestFinished(() => socket.terminate());
  const closed = new Promise<[number, string]>((resolve) => socket.once('close', (code, reason) => resolve([code, reason.toString()])));
  await gated;

  // Meanwhile the job is hard-deleted, and its log leaves the data directory.
  expect((await f.call('DELETE', `/v1/jobs/${job}/hard`)).status).toBe(200);
  const logDir = join(f.server.dataDir, 'live-logs', String(job));
  await until(() => !existsSync(logDir), 20_000, `the log directory of job ${job} to be removed`);
  releaseRead();

  expect(await closed).toEqual([1008, 'job not found']);
});
