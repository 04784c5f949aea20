/**
 * Workflows run by a real agent on a real server: the shipped train → predict workflow ends with both
 * children finished and the predict child reading the train child's model; a failing first child
 * errors the workflow and nothing further is created; a cancel mid-workflow leaves no child running
 * or acquirable.
 */
import { describe, expect, it } from 'vitest';
import { pollFilter } from '../../src/protocol/filter.js';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { createJob, downloadOutput, ended, getJob, importTemplate, shellTemplate, started, startTestAgent, until, waitForJob } from '../helpers/agent.js';

interface Child {
  pk: number;
  description: string;
  input_values: Record<string, { value: unknown; type: string }>;
  start_time: string | null;
  end_time: string | null;
  error_reason: string | null;
  is_cancelled: boolean;
  outputs: { pk: number; name: string; type: string }[];
}

async function children(server: TestServer, parent: number): Promise<Record<string, Child>> {
  const res = await api(server.url, 'POST', '/v1/jobs/list', { token: server.adminToken, json: { expressions: [{ type: 'exact', field: 'parent', value: parent }] } });
  return Object.fromEntries((res.body as Child[]).map((job) => [/^child job '([^']+)'/.exec(job.description)![1], job]));
}

async function acquirable(server: TestServer): Promise<number[]> {
  const res = await api(server.url, 'POST', '/v1/jobs/list', { token: server.adminToken, json: pollFilter() });
  return (res.body as { pk: number }[]).map((job) => job.pk);
}

/** A two-node workflow: `first` (the given template) then `second`, which takes first's `out.txt`. */
function twoStepWorkflow(name: string, first: string): Record<string, unknown> {
  return {
    name,
    version: 1,
    description: 'two steps',
    scope: 'public',
    licence: 'Apache 2.0',
    specific: {
      nodes: { first: { name: first }, second: { name: 'predict' } },
      dependencies: [{ from_node: 'first', from_output: 'out.txt', to_node: 'second', to_input: 'model' }],
    },
  };
}

const OUT_TXT = { outputs: { types: ['JSON'], default: { 'out.txt': 'BLOB' }, const: true, help: 'declared outputs' } };

describe('a workflow run by the agent', () => {
  it('train-then-predict: both children finish, predict reads the model train produced', async () => {
    const server = await startTestServer();
    for (const name of ['train-epochs', 'predict']) await importTemplate(server, name);
    const workflow = await importTemplate(server, 'train-then-predict');
    await startTestAgent(server);
    const parent = await createJob(server, workflow, { parameter_values: { 'train:epoch_seconds': { value: 0.05, type: 'float' } } });
    const done = await waitForJob(server, parent, ended, 60_000);
    expect(done.error_reason).toBeNull();

    const { train, predict } = await children(server, parent);
    expect(train!.end_time).not.toBeNull();
    expect(train!.error_reason).toBeNull();
    expect(predict!.end_time).not.toBeNull();
    expect(predict!.error_reason).toBeNull();
    const model = train!.outputs.find((o) => o.name === 'model.bin')!;
    expect(predict!.input_values.model).toEqual({ value: model.pk, type: 'JobOutput<BLOB>' });
    // The override of the workflow (3 epochs) reached the train child's program.
    expect((await downloadOutput(server, train!.pk, 'model.bin')).toString()).toContain('epochs=3');
    // predict read that model: its log says so, and its predictions are on the workflow too.
    expect((await downloadOutput(server, predict!.pk, 'log')).toString()).toMatch(/predicting with .*model \(\d+ bytes\)/);
    const predictions = await downloadOutput(server, parent, 'predict:predictions.csv');
    expect(predictions.toString()).toMatch(/^item,label,score\n/);
    expect((await getJob(server, parent)).outputs.map((o) => o.name).sort()).toEqual(['predict:log', 'predict:predictions.csv', 'train:log', 'train:model.bin']);
  });

  it('a failing first child errors the workflow and nothing further is created', async () => {
    const server = await startTestServer();
    await importTemplate(server, 'predict');
    await importTemplate(server, shellTemplate('fails', 'echo "cannot train" >&2\nexit 3\n', OUT_TXT));
    const workflow = await importTemplate(server, twoStepWorkflow('fails-first', 'fails'));
    const { agent } = await startTestAgent(server);
    const parent = await createJob(server, workflow);
    const done = await waitForJob(server, parent, ended, 30_000);
    expect(done.error_reason).toMatch(/^Error in child job 'first':\n/);
    expect(Object.keys(await children(server, parent))).toEqual(['first']);
    await until(() => agent.getStatus().jobs.length === 0, 10_000, 'the agent to be idle');
    expect(await acquirable(server)).toEqual([]);
    expect(Object.keys(await children(server, parent))).toEqual(['first']);
  });

  it('a cancel mid-workflow stops the running child and leaves nothing running or acquirable', async () => {
    const server = await startTestServer();
    await importTemplate(server, 'predict');
    await importTemplate(server, shellTemplate('slow', 'i=0\nwhile [ $i -lt 600 ]; do i=$((i+1)); echo "UFDL-PROGRESS 0.$((i % 10))"; sleep 0.1; done\necho x > "$UFDL_OUTPUT_DIR/out.txt"\n', OUT_TXT));
    const workflow = await importTemplate(server, twoStepWorkflow('slow-first', 'slow'));
    const { agent } = await startTestAgent(server);
    const parent = await createJob(server, workflow);
    await waitForJob(server, parent, started, 30_000);
    const { first } = await children(server, parent);
    await until(() => agent.getStatus().jobs.some((j) => j.jobPk === first!.pk && j.pid !== null), 15_000, 'the child process');
    const pid = agent.getStatus().jobs.find((j) => j.jobPk === first!.pk)!.pid!;

    const cancel = await api(server.url, 'DELETE', `/v1/jobs/${parent}/cancel`, { token: server.adminToken });
    expect(cancel.status).toBe(200);
    await until(() => agent.getStatus().jobs.length === 0, 20_000, 'the agent to stop the cancelled child');
    expect(() => process.kill(pid, 0)).toThrow();
    const after = await children(server, parent);
    expect(Object.keys(after)).toEqual(['first']);
    expect(after.first!.is_cancelled).toBe(true);
    expect((await getJob(server, parent)).is_cancelled).toBe(true);
    expect(await acquirable(server)).toEqual([]);
  });
});
