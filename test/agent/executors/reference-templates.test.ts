/**
 * Example templates the reference backend accepts (issue 8, item 4): `reference-train` and
 * `reference-predict` (Train/Predict contracts, our `ufdl_agent.Command` executor) import into the
 * reference (its import rules, in the stand-in) and into our server in `--no-extensions` mode, and
 * our agent runs the train → predict chain on both. The `Run` examples are refused by the reference.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createJob, downloadOutput, ended, getJob, importTemplate, startTestAgent, TEMPLATES_DIR, until, waitForJob } from '../../helpers/agent.js';
import { startReferenceBackend, type ReferenceBackend } from '../../helpers/reference-backend.js';
import { ADMIN_PASSWORD, ADMIN_USER, api, startTestServer } from '../../helpers/server.js';

const spec = (name: string) => JSON.parse(readFileSync(join(TEMPLATES_DIR, `${name}.json`), 'utf8')) as Record<string, unknown>;
const DATASET = { value: 3, type: "PK<Dataset<Domain<'Image Classification'>>>" };

async function referenceWithAdmin(): Promise<{ ref: ReferenceBackend; token: string }> {
  const ref = await startReferenceBackend();
  ref.addUser(ADMIN_USER, ADMIN_PASSWORD, { admin: true });
  const login = await api(ref.url, 'POST', '/v1/auth/obtain', { json: { username: ADMIN_USER, password: ADMIN_PASSWORD } });
  return { ref, token: (login.body as { access: string }).access };
}

describe('example templates against the reference', () => {
  it('the reference imports reference-train and reference-predict, and refuses the Run examples', async () => {
    const { ref, token } = await referenceWithAdmin();
    for (const name of ['reference-train', 'reference-predict']) {
      const res = await api(ref.url, 'POST', '/v1/job-templates/import', { token, json: spec(name) });
      expect(res.status, `${name}: ${res.text}`).toBe(200);
      expect(res.body).toMatchObject({ name, executor_class: 'ufdl_agent.Command', licence: 2 });
    }
    for (const name of ['shell-hello', 'train-epochs', 'predict']) {
      const res = await api(ref.url, 'POST', '/v1/job-templates/import', { token, json: spec(name) });
      expect(res.status, name).toBe(400);
      expect(res.body.detail, name).toMatch(/Unknown contract-name Run|unexpected properties inputs/);
    }
  });

  it('our agent runs reference-train, then reference-predict on its model, against the reference', async () => {
    const { ref, token } = await referenceWithAdmin();
    const imported = async (name: string) => ((await api(ref.url, 'POST', '/v1/job-templates/import', { token, json: spec(name) })).body as { pk: number }).pk;
    const train = ref.createJob(await imported('reference-train'), { input_values: { dataset: DATASET }, parameter_values: { epochs: { value: 3, type: 'int' }, epoch_seconds: { value: 0.05, type: 'float' } } });
    await startTestAgent({ url: ref.url });
    await until(() => ref.job(train.pk).end_time !== null, 30_000, 'the train job to end');
    expect(ref.job(train.pk).error_reason).toBeNull();
    const model = ref.output(train.pk, 'model', "Model<Domain<'Image Classification'>, Framework<'ufdl_agent_demo', '1'>>")!;
    expect(model.bytes.toString()).toBe('ufdl-agent example model\ndataset=3\nepochs=3\n');

    const predict = ref.createJob(await imported('reference-predict'), {
      input_values: { model: { value: model.pk, type: "JobOutput<Model<Domain<'Image Classification'>, Framework<'ufdl_agent_demo', '1'>>>" }, dataset: DATASET },
      parameter_values: { items: { value: 4, type: 'int' } },
    });
    await until(() => ref.job(predict.pk).end_time !== null, 30_000, 'the predict job to end');
    expect(ref.job(predict.pk).error_reason).toBeNull();
    const predictions = ref.output(predict.pk, 'predictions.csv', 'BLOB')!.bytes.toString().trim().split('\n');
    expect(predictions).toHaveLength(5);
    expect(predictions[0]).toBe('item,label,score');
  });

  it('they import into our server in --no-extensions mode, and run there too', async () => {
    const server = await startTestServer({ extensions: false });
    const trainTemplate = await importTemplate(server, 'reference-train');
    const predictTemplate = await importTemplate(server, 'reference-predict');
    await startTestAgent(server);
    const train = await createJob(server, trainTemplate, { input_values: { dataset: DATASET }, parameter_values: { epoch_seconds: { value: 0.05, type: 'float' } } });
    const trained = await waitForJob(server, train, ended, 30_000);
    expect(trained.error_reason).toBeNull();
    const model = trained.outputs.find((o) => o.name === 'model')!;
    const predict = await createJob(server, predictTemplate, {
      input_values: { model: { value: model.pk, type: "JobOutput<Model<Domain<'Image Classification'>, Framework<'ufdl_agent_demo', '1'>>>" }, dataset: DATASET },
    });
    expect((await waitForJob(server, predict, ended, 30_000)).error_reason).toBeNull();
    expect((await downloadOutput(server, predict, 'predictions.csv')).toString()).toMatch(/^item,label,score\n(item-\d+,class-\d,0\.\d+\n){10}$/);
    expect((await getJob(server, train)).outputs.map((o) => o.name).sort()).toEqual(['log', 'model']);
  });
});
