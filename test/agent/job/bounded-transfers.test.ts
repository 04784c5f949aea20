/**
 * A job's transfers run a few at a time: outputs are uploaded and inputs downloaded with bounded
 * concurrency (p-queue), never one after another and never all at once; a failed download aborts the
 * others. The server is a narrow double of the node API that holds each call until the test lets it go.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createJobDir, jobDirPaths } from '../../../src/agent/child/job-dir.js';
import { downloadInputs, INPUT_DOWNLOADS_AT_ONCE } from '../../../src/agent/job/inputs.js';
import { OUTPUT_UPLOADS_AT_ONCE, uploadOutputs, type UploadContext } from '../../../src/agent/job/server-calls.js';
import { openJournal } from '../../../src/agent/journal/index.js';
import { createAgentMetrics } from '../../../src/agent/metrics.js';
import type { JobJson } from '../../../src/protocol/wire.js';
import { testLogger, until } from '../../helpers/agent.js';
import { job as jobJson, typed } from '../executors/fixtures.js';
import { tempDir } from '../../helpers/temp-dir.js';

/** Calls that wait until released, counting how many are in flight at most. */
function heldCalls() {
  const waiting: { name: string; release: (error?: Error) => void }[] = [];
  let inFlight = 0;
  let most = 0;
  const call = (name: string, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      inFlight++;
      most = Math.max(most, inFlight);
      let settled = false;
      const done = (error?: Error) => {
        if (settled) return;
        settled = true;
        inFlight--;
        if (error) reject(error);
        else resolve();
      };
      signal?.addEventListener('abort', () => done(new Error(`${name} aborted`)), { once: true });
      waiting.push({ name, release: done });
    });
  return { call, waiting, most: () => most, inFlight: () => inFlight };
}

describe('bounded transfers', () => {
  it(`uploads a job's outputs ${OUTPUT_UPLOADS_AT_ONCE} at a time, and reports failures in registration order`, async () => {
    const dir = await tempDir('ufdl-transfers-');
    const journal = openJournal({ path: join(dir, 'journal.sqlite3'), serverUrl: 'http://ufdl.test' });
    onTestFinished(() => journal.close());
    journal.beginAcquire({ jobPk: 3, nodePk: 1 });
    for (const state of ['acquired', 'preparing', 'starting', 'running'] as const) journal.transition(3, state);
    const names = ['a', 'b', 'c', 'd', 'e'];
    for (const name of names) {
      const path = join(dir, name);
      await writeFile(path, name);
      journal.registerOutput(3, { name, type: 'BLOB', path });
    }
    journal.transition(3, 'uploading');
    const held = heldCalls();
    const api = {
      uploadOutput: async (_pk: number, name: string) => {
        await held.call(name);
        return { output: { name }, sent: { size: 1, sha256: 'a'.repeat(64) }, serverSha256: undefined };
      },
    } as unknown as UploadContext['api'];
    const ctx: UploadContext = { jobPk: 3, api, journal, log: testLogger(), signal: new AbortController().signal, metrics: createAgentMetrics({ defaultMetrics: false }) };

    const uploaded = uploadOutputs(ctx);
    for (let released = 0; released < names.length; released++) {
      await until(() => held.waiting.length > released, 10_000, `upload ${released + 1} to begin`);
      expect(held.inFlight()).toBe(Math.min(OUTPUT_UPLOADS_AT_ONCE, names.length - released));
      // 'b' and 'd' are refused (an answer that is not worth a retry), the others land.
      const next = held.waiting[released]!;
      next.release(['b', 'd'].includes(next.name) ? new Error('refused') : undefined);
    }
    const failed = await uploaded;
    expect(held.most()).toBe(OUTPUT_UPLOADS_AT_ONCE);
    expect(held.waiting.map((w) => w.name).slice(0, OUTPUT_UPLOADS_AT_ONCE)).toEqual(['a', 'b']);
    expect(failed.map((o) => o.name)).toEqual(['b', 'd']);
    expect(journal.outputs(3).filter((o) => o.state === 'uploaded').map((o) => o.name)).toEqual(['a', 'c', 'e']);
  });

  it(`downloads inputs ${INPUT_DOWNLOADS_AT_ONCE} at a time, and aborts the others when one fails`, async () => {
    const dir = await createJobDir(jobDirPaths(await tempDir('ufdl-transfers-'), 'http://ufdl.test', 4));
    const inputs = Object.fromEntries(['m1', 'm2', 'm3', 'm4'].map((name, i) => [name, typed(i + 10, 'JobOutput<BLOB>')]));
    const job: JobJson = jobJson(4, {}, inputs);
    const held = heldCalls();
    const api = {
      downloadJobOutputByPk: (pk: number, _dest: string, options: { signal?: AbortSignal }) => held.call(String(pk), options.signal),
    } as unknown as Parameters<typeof downloadInputs>[0];

    const all = downloadInputs(api, job, dir);
    await until(() => held.waiting.length === INPUT_DOWNLOADS_AT_ONCE, 10_000, 'the first downloads to begin');
    held.waiting[0]!.release();
    await until(() => held.waiting.length === INPUT_DOWNLOADS_AT_ONCE + 1, 10_000, 'the next download to begin');
    expect(held.inFlight()).toBe(INPUT_DOWNLOADS_AT_ONCE);
    held.waiting[1]!.release(new Error('output 11 is gone'));
    await expect(all).rejects.toThrow('output 11 is gone');
    // The one still running was aborted, and the last one never began.
    expect(held.inFlight()).toBe(0);
    expect(held.waiting.map((w) => w.name)).toEqual(['10', '11', '12']);
    expect(held.most()).toBe(INPUT_DOWNLOADS_AT_ONCE);
  });
});
