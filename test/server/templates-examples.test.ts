/**
 * The example templates under config/templates/: they import, jobs can be created from them, and
 * their scripts, prepared by the agent's Shell executor, run under /bin/sh and
 * honour the child's contract (marker lines on stdout, files in $UFDL_OUTPUT_DIR).
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { JobJson, TemplateJson } from '../../src/protocol/wire.js';
import { createJobDir, jobDirPaths } from '../../src/agent/child/job-dir.js';
import { shellExecutor } from '../../src/agent/executors/shell.js';
import { ADMIN_PK, startWithFixtures, type Fixtures } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';

const run = promisify(execFile);
const MARKER = /^UFDL-PROGRESS (0(\.\d+)?|1(\.0+)?)( (\{.*\}))?$/;

async function importExample(fx: Fixtures, file: string): Promise<TemplateJson> {
  const spec = JSON.parse(await readFile(join('config/templates', file), 'utf8'));
  const res = await fx.call('POST', '/v1/job-templates/import', { json: spec });
  expect(res.status, `${file}: ${res.text}`).toBe(200);
  return res.body;
}

async function createJob(fx: Fixtures, template: TemplateJson, body: unknown): Promise<JobJson> {
  const res = await fx.call('POST', `/v1/job-templates/${template.pk}/create-job`, { json: body });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** Prepare a job with the agent's Shell executor and run what it prepared; returns stdout lines and the output files. */
async function runShellJob(job: JobJson, template: TemplateJson, inputFiles: Record<string, string> = {}) {
  const work = await tempDir('ufdl-example-');
  const dir = await createJobDir(jobDirPaths(work, 'http://ufdl.test', job.pk));
  const inputPaths: Record<string, string> = {};
  for (const [name, content] of Object.entries(inputFiles)) {
    inputPaths[name] = join(dir.inputDir, name);
    await writeFile(inputPaths[name]!, content);
  }
  const { spec } = shellExecutor.prepare(job, template, { dir, gpu: null, inputPaths, serverUrl: 'http://127.0.0.1:1', nodePk: 1, attempt: 1 });
  const { stdout } = await run(spec.argv[0]!, spec.argv.slice(1), { cwd: spec.cwd, env: spec.env });
  const files: Record<string, string> = {};
  for (const name of await readdir(dir.outputDir)) files[name] = await readFile(join(dir.outputDir, name), 'utf8');
  return { lines: stdout.trim().split('\n'), files };
}

function markers(lines: string[]): Array<{ value: number; data: unknown }> {
  return lines
    .filter((line) => line.startsWith('UFDL-PROGRESS'))
    .map((line) => {
      const match = MARKER.exec(line);
      expect(match, line).not.toBeNull();
      return { value: Number(match![1]), data: match![5] === undefined ? undefined : JSON.parse(match![5]) };
    });
}

describe('example templates', () => {
  it('all import as Run templates for the ufdl_agent.Shell executor, body a const str', async () => {
    const fx = await startWithFixtures();
    for (const file of ['shell-hello.json', 'train-epochs.json', 'predict.json']) {
      const template = await importExample(fx, file);
      expect(template).toMatchObject({ type: 'Run', executor_class: 'ufdl_agent.Shell', creator: ADMIN_PK });
      expect(template.parameters.body).toMatchObject({ types: ['str'], const: true, default_type: 'str' });
    }
  });

  it('shell-hello greets the given name and writes greeting.txt', async () => {
    const fx = await startWithFixtures();
    const template = await importExample(fx, 'shell-hello.json');
    const job = await createJob(fx, template, { input_values: {}, parameter_values: { name: { value: "O'Hara & co", type: 'str' } } });
    const { lines, files } = await runShellJob(job, template);
    expect(lines).toContain("Hello, O'Hara & co!");
    expect(files).toEqual({ 'greeting.txt': "Hello, O'Hara & co!\n" });
    expect(markers(lines).at(-1)!.value).toBe(1);
    expect((await fx.call('GET', `/v1/job-templates/${template.pk}/get-outputs`)).body).toEqual({ 'greeting.txt': 'BLOB' });
  });

  it('train-epochs reports one marker per epoch with rising progress and writes model.bin', async () => {
    const fx = await startWithFixtures();
    const template = await importExample(fx, 'train-epochs.json');
    const job = await createJob(fx, template, {
      input_values: {},
      parameter_values: { epochs: { value: 4, type: 'int' }, epoch_seconds: { value: 0, type: 'float' } },
    });
    const { lines, files } = await runShellJob(job, template);
    const progress = markers(lines);
    expect(progress.map((m) => m.value)).toEqual([0.25, 0.5, 0.75, 1]);
    expect(progress.map((m) => (m.data as { epoch: number }).epoch)).toEqual([1, 2, 3, 4]);
    expect(Object.keys(files)).toEqual(['model.bin']);
    expect((await fx.call('GET', `/v1/job-templates/${template.pk}/get-outputs`)).body).toEqual({ 'model.bin': 'BLOB' });
  });

  it('train-epochs refuses a non-integer epoch count at create-job', async () => {
    const fx = await startWithFixtures();
    const template = await importExample(fx, 'train-epochs.json');
    const res = await fx.call('POST', `/v1/job-templates/${template.pk}/create-job`, {
      json: { input_values: {}, parameter_values: { epochs: { value: 'five', type: 'int' } } },
    });
    expect(res.status).toBe(400);
    expect(res.body.detail).toContain("Bad value for parameter 'epochs' of type int");
  });

  it("predict takes a train job's model output and writes predictions.csv from it", async () => {
    const fx = await startWithFixtures();
    const template = await importExample(fx, 'predict.json');
    expect(template.inputs).toEqual([{ name: 'model', types: ['JobOutput<BLOB>'], help: expect.any(String) }]);
    // The model output of a (simulated) train job.
    const trainJob = fx.job();
    fx.db.prepare("INSERT INTO blobs (sha256, size) VALUES (?, 10)").run('b'.repeat(64));
    const { lastInsertRowid } = fx.db
      .prepare("INSERT INTO outputs (job, name, type, sha256, size, creator, creation_time) VALUES (?, 'model.bin', 'BLOB', ?, 10, 1, ?)")
      .run(trainJob, 'b'.repeat(64), new Date().toISOString());
    const job = await createJob(fx, template, {
      input_values: { model: { value: Number(lastInsertRowid), type: 'JobOutput<BLOB>' } },
      parameter_values: { items: { value: 3, type: 'int' } },
    });
    const { lines, files } = await runShellJob(job, template, { model: 'a trained model\n' });
    expect(files['predictions.csv']!.trim().split('\n')).toHaveLength(4);
    expect(files['predictions.csv']).toMatch(/^item,label,score\nitem-1,class-\d,0\.\d\d\n/);
    expect(markers(lines).map((m) => m.value)).toEqual([0.333, 0.666, 1]);

    const missing = await fx.call('POST', `/v1/job-templates/${template.pk}/create-job`, { json: { input_values: {} } });
    expect(missing.status).toBe(406);
    expect(missing.body.detail).toBe("No input value provided for input 'model'");
  });

  it('predict fails clearly when the model was not downloaded', async () => {
    const fx = await startWithFixtures();
    const template = await importExample(fx, 'predict.json');
    const output = (() => {
      const trainJob = fx.job();
      fx.db.prepare("INSERT INTO blobs (sha256, size) VALUES (?, 1)").run('c'.repeat(64));
      return Number(
        fx.db
          .prepare("INSERT INTO outputs (job, name, type, sha256, size, creator, creation_time) VALUES (?, 'model.bin', 'BLOB', ?, 1, 1, ?)")
          .run(trainJob, 'c'.repeat(64), new Date().toISOString()).lastInsertRowid,
      );
    })();
    const job = await createJob(fx, template, { input_values: { model: { value: output, type: 'JobOutput<BLOB>' } } });
    await expect(runShellJob(job, template)).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('no model file') });
  });
});
