/**
 * An attempt's outputs are its own, against the reference backend (issue 8, item 1). The reference
 * keeps a job's outputs across reset (soft-deleted, still blocking the name), so the re-run of a
 * requeued job found the killed attempt's `log` in the way, counted the 400 as "already uploaded",
 * and reported success with the killed attempt's log.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { UfdlClient } from '../../../src/client/api.js';
import { openJournal } from '../../../src/agent/journal/index.js';
import { uploadOutputs, type UploadContext } from '../../../src/agent/job/server-calls.js';
import { createAgentMetrics } from '../../../src/agent/metrics.js';
import { hashFile } from '../../../src/agent/outputs/hash.js';
import { createJob, downloadOutput, ended, importTemplate, recordingLogger, shellTemplate, started, startTestAgent, testLogger, until, waitForJob } from '../../helpers/agent.js';
import { startReferenceBackend, type ReferenceBackend } from '../../helpers/reference-backend.js';
import { ADMIN_PASSWORD, ADMIN_USER, api, startTestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

const TRAIN_TYPE = "Train<Domain<'Image Classification'>, Framework<'sh', '1'>>";

/** A train job whose first run takes long (so it can be stopped) and whose log says which run it is. */
async function epochsJob(ref: ReferenceBackend, dir: string): Promise<{ pk: number; runsFile: string }> {
  const runsFile = join(dir, 'runs');
  const script = [
    `n=$(($(cat ${runsFile} 2>/dev/null || echo 0) + 1)); echo $n > ${runsFile}`,
    'for e in 1 2 3 4; do echo "run $n epoch $e of 4"; if [ $n = 1 ]; then sleep 30; fi; done',
  ].join('\n');
  const template = ref.addTemplate({
    name: 'epochs',
    type: TRAIN_TYPE,
    executor_class: 'ufdl_agent.Command',
    parameters: { body: { types: ['Array<str>'], default: ['/bin/sh', '-c', script], default_type: 'Array<str>', const: true, help: 'argv' } },
  });
  const job = ref.createJob(template, { input_values: { dataset: { value: 1, type: "PK<Dataset<Domain<'Image Classification'>>>" } } });
  return { pk: job.pk, runsFile };
}

/** Run the job until its first run prints, then stop the agent at once (requeue), as SIGQUIT does. */
async function requeueFirstRun(ref: ReferenceBackend, username: string, password: string) {
  const dir = await tempDir('ufdl-ref-outputs-');
  const job = await epochsJob(ref, dir);
  const first = await startTestAgent({ url: ref.url }, { username, password, nodeIndex: 0 });
  await until(async () => (await readFile(job.runsFile, 'utf8').catch(() => '')).trim() === '1', 20_000, 'the first run to start');
  first.agent.stopNow('test: stop and requeue');
  await first.close();
  const requeued = ref.job(job.pk);
  expect(requeued).toMatchObject({ start_time: null, end_time: null, error_reason: null, node: null });
  // The reference kept the killed run's log: soft-deleted, but still holding the name.
  expect(ref.output(job.pk, 'log', 'BLOB')?.deletion_time).not.toBeNull();
  return job;
}

describe('outputs of a re-run on the reference backend', () => {
  it("replaces the log a requeued attempt left: the re-run's success carries the re-run's log", async () => {
    const ref = await startReferenceBackend();
    ref.addUser(ADMIN_USER, ADMIN_PASSWORD, { admin: true });
    const job = await requeueFirstRun(ref, ADMIN_USER, ADMIN_PASSWORD);

    const second = await startTestAgent({ url: ref.url }, { nodeIndex: 1 });
    await until(() => ref.job(job.pk).end_time !== null, 30_000, 'the re-run to finish');
    await second.close();

    expect(ref.job(job.pk).error_reason).toBeNull();
    const log = ref.output(job.pk, 'log', 'BLOB')!;
    expect(log.deletion_time).toBeNull();
    expect(log.bytes.toString('utf8')).toContain('run 2 epoch 4 of 4');
    expect(log.bytes.toString('utf8')).not.toContain('run 1');
    // Delete Output is only a soft delete on the reference; the hard delete by pk freed the name.
    expect(ref.requests.some((r) => /^DELETE \/v1\/job-outputs\/\d+\/hard/.test(r))).toBe(true);
  });

  it('fails the re-run with a clear error when the agent may not remove the stale log (not an admin)', async () => {
    const ref = await startReferenceBackend();
    ref.addUser(ADMIN_USER, ADMIN_PASSWORD, { admin: true });
    ref.addUser('worker', 'worker-password');
    const job = await requeueFirstRun(ref, 'worker', 'worker-password');
    const stale = ref.output(job.pk, 'log', 'BLOB')!;

    const { logger, lines } = recordingLogger();
    const second = await startTestAgent({ url: ref.url }, { username: 'worker', password: 'worker-password', nodeIndex: 1 }, undefined, logger);
    await until(() => ref.job(job.pk).end_time !== null, 30_000, 'the re-run to finish');
    await second.close();
    // Said once at start-up, before any job ran into it.
    expect(lines.filter((l) => String(l.msg).startsWith("the agent's user is not staff"))).toHaveLength(1);

    const ended = ref.job(job.pk);
    expect(ended.error_reason).toMatch(/output log \(BLOB\) that this attempt did not upload/);
    expect(ended.error_reason).toMatch(/only an admin/);
    // Nothing was passed off as the re-run's: the only log is still the killed run's, deleted.
    expect(ref.output(job.pk, 'log', 'BLOB')).toBe(stale);
  });
});

describe('after an upload whose outcome is unknown', () => {
  /** A started job, a journal entry in `uploading` whose `log` upload was begun once, and a client as its node. */
  async function uploadingAfterCrash(ref: ReferenceBackend, content: string) {
    ref.addUser(ADMIN_USER, ADMIN_PASSWORD, { admin: true });
    const dir = await tempDir('ufdl-ref-outputs-');
    const template = ref.addTemplate({ name: 't', type: TRAIN_TYPE, executor_class: 'ufdl_agent.Command', parameters: {} });
    const job = ref.createJob(template);
    const node = { pk: 1, ip: '10.0.0.1', index: 0, driver_version: null, hardware_generation: null, gpu_mem: null, cpu_mem: 1, last_seen: null, current_job: job.pk };
    ref.nodes.push(node);
    Object.assign(job, { node: node.pk, start_time: new Date().toISOString() });
    const api = new UfdlClient({ serverUrl: ref.url, username: ADMIN_USER, password: ADMIN_PASSWORD, nodePk: node.pk, retryBaseDelayMs: 10 });
    onTestFinished(() => api.close());
    const journal = openJournal({ path: join(dir, 'journal.sqlite3'), serverUrl: ref.url });
    onTestFinished(() => journal.close());
    const path = join(dir, 'log');
    await writeFile(path, content);
    journal.beginAcquire({ jobPk: job.pk, nodePk: node.pk });
    for (const state of ['acquired', 'preparing', 'starting', 'running'] as const) journal.transition(job.pk, state);
    // As the agent registers a file: its bytes are learnt by the upload, which never answered.
    journal.registerOutput(job.pk, { name: 'log', type: 'BLOB', path });
    journal.transition(job.pk, 'uploading');
    // The agent died after writing the intent: whether the request reached the server is unknown.
    journal.markOutput(job.pk, { name: 'log', type: 'BLOB' }, 'uploading');
    const ctx: UploadContext = { jobPk: job.pk, api, journal, log: testLogger(), signal: new AbortController().signal, metrics: createAgentMetrics({ defaultMetrics: false }) };
    return { job, ctx, journal };
  }

  it("does not count an earlier attempt's copy as this attempt's upload", async () => {
    const ref = await startReferenceBackend();
    const { job, ctx, journal } = await uploadingAfterCrash(ref, 'this attempt\n');
    ref.outputs.push({ pk: 99, job: job.pk, name: 'log', type: 'BLOB', bytes: Buffer.from('an earlier attempt\n'), creator: 1, creation_time: 'then', deletion_time: 'later' });

    expect(await uploadOutputs(ctx)).toEqual([]);

    expect(ref.output(job.pk, 'log', 'BLOB')!.bytes.toString()).toBe('this attempt\n');
    expect(journal.outputs(job.pk)[0]).toMatchObject({ state: 'uploaded', ...(await hashFile(journal.outputs(job.pk)[0]!.path)) });
  });

  it("does not count a live copy with other bytes as this attempt's upload: it is replaced by this attempt's file", async () => {
    const ref = await startReferenceBackend();
    const { job, ctx, journal } = await uploadingAfterCrash(ref, 'this attempt\n');
    ref.outputs.push({ pk: 8, job: job.pk, name: 'log', type: 'BLOB', bytes: Buffer.from('someone else\n'), creator: 1, creation_time: 'now', deletion_time: null });

    expect(await uploadOutputs(ctx)).toEqual([]);

    expect(ref.output(job.pk, 'log', 'BLOB')!.bytes.toString()).toBe('this attempt\n');
    expect(ref.requests.some((r) => r.startsWith('DELETE'))).toBe(true);
    expect(journal.outputs(job.pk)[0]).toMatchObject({ state: 'uploaded', size: 13, sha256: (await hashFile(journal.outputs(job.pk)[0]!.path)).sha256 });
  });

  it('counts a live copy with the same bytes as landed, and uploads nothing again', async () => {
    const ref = await startReferenceBackend();
    const { job, ctx, journal } = await uploadingAfterCrash(ref, 'this attempt\n');
    ref.outputs.push({ pk: 7, job: job.pk, name: 'log', type: 'BLOB', bytes: Buffer.from('this attempt\n'), creator: 1, creation_time: 'now', deletion_time: null });

    expect(await uploadOutputs(ctx)).toEqual([]);

    expect(ref.output(job.pk, 'log', 'BLOB')!.pk).toBe(7);
    expect(ref.requests.filter((r) => r.startsWith('DELETE'))).toEqual([]);
    // The journal learnt this attempt's bytes by hashing its file (the lost upload recorded nothing).
    expect(journal.outputs(job.pk)[0]).toMatchObject({ state: 'uploaded', size: 13 });
  });
});

describe('outputs of a re-run on our server', () => {
  for (const extensions of [true, false]) {
    it(`replaces a log this attempt did not upload (${extensions ? 'extensions' : '--no-extensions'})`, async () => {
      const server = await startTestServer({ extensions });
      const dir = await tempDir('ufdl-ref-outputs-');
      const go = join(dir, 'go');
      const template = await importTemplate(server, shellTemplate('waits', `echo mine\nwhile [ ! -e ${go} ]; do sleep 0.05; done\n`));
      const pk = await createJob(server, template);
      await startTestAgent(server);
      await waitForJob(server, pk, started);
      // Someone (an admin) puts a `log` on the job while it runs.
      const put = await api(server.url, 'POST', `/v1/jobs/${pk}/outputs/log/BLOB`, {
        token: server.adminToken,
        body: 'not the job\n',
        headers: { 'content-disposition': 'attachment; filename=log', 'content-type': 'application/data' },
      });
      expect(put.status).toBe(200);
      await writeFile(go, '');

      const job = await waitForJob(server, pk, ended);
      expect(job.error_reason).toBeNull();
      expect((await downloadOutput(server, pk, 'log')).toString('utf8')).toMatch(/^mine\n/);
    });
  }
});
