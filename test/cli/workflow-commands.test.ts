/**
 * The CLI on workflows, the built CLI against a real server while the test works the children as a
 * node would: `submit train-then-predict --wait` shows the graph and each child until the workflow
 * ends (exit 0), `watch` of a workflow whose child fails exits 1 with the reason, and `jobs` lists
 * the children under their workflow.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/build.js';
import { api, startTestServer, type TestServer } from '../helpers/server.js';
import { eventually } from '../helpers/wait.js';
import { ROOT, TestNode, cli, expectOneLineError, serverEnv, startCli } from './commands-support.js';

beforeAll(buildOnce, 240_000);

async function serverWithWorkflow(): Promise<TestServer> {
  const server = await startTestServer();
  const files = ['train-epochs', 'predict', 'train-then-predict'].map((name) => join(ROOT, 'config/templates', `${name}.json`));
  const imported = await cli(['templates', 'import', ...files], { env: serverEnv(server) });
  expect(imported.code, imported.stderr).toBe(0);
  expect(imported.stdout).toContain('imported train-then-predict version 1');
  return server;
}

/** The pk of the workflow's child running `node`, once it exists. */
function child(server: TestServer, parent: number, node: string): Promise<number> {
  return eventually(async () => {
    const res = await api(server.url, 'POST', '/v1/jobs/list', { token: server.adminToken, json: { expressions: [{ type: 'exact', field: 'parent', value: parent }] } });
    return (res.body as { pk: number; description: string }[]).find((job) => job.description.startsWith(`child job '${node}'`))?.pk;
  });
}

async function workflowPk(server: TestServer): Promise<number> {
  return eventually(async () => {
    const res = await api(server.url, 'POST', '/v1/jobs/list', { token: server.adminToken, json: { expressions: [{ type: 'isnull', field: 'parent' }] } });
    return (res.body as { pk: number }[])[0]?.pk;
  });
}

describe('submit --wait on a workflow', () => {
  it('shows the graph and every child, and exits 0 when the workflow finishes', async () => {
    const server = await serverWithWorkflow();
    const waiting = startCli(['submit', 'train-then-predict', '--param', 'train:epochs=2', '--wait'], { env: serverEnv(server), timeoutMs: 60_000 });
    const parent = await workflowPk(server);
    const node = await TestNode.create(server);
    await waiting.stdoutMatches(/watching \(live updates\)/);
    const train = await child(server, parent, 'train');
    const trainJob = (await api(server.url, 'GET', `/v1/jobs/${train}`, { token: server.adminToken })).body;
    expect(trainJob.parameter_values).toEqual({ epochs: { value: 2, type: 'int' } });
    await node.acquireAndStart(train);
    await node.progress(train, '0.5');
    await node.upload(train, 'model.bin', 'BLOB', 'weights');
    await node.finish(train);
    const predict = await child(server, parent, 'predict');
    await node.acquireAndStart(predict);
    await node.upload(predict, 'predictions.csv', 'BLOB', 'item,label,score\n');
    await node.finish(predict);

    const result = await waiting.result;
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe(String(parent));
    const text = result.stdout;
    expect(text).toContain(`job ${parent}: a workflow of 2 nodes\n  train (train-epochs@1)\n  predict (predict@1), after train\n`);
    // Each child's changes, in order, then the workflow's end.
    const order = [`train (job ${train})`, `train (job ${train}): finished`, `predict (job ${predict})`, `predict (job ${predict}): finished`, `job ${parent}: finished`];
    let at = -1;
    for (const needle of order) {
      const found = text.indexOf(needle, at + 1);
      expect(found, `${needle} after position ${at} in:\n${text}`).toBeGreaterThan(at);
      at = found;
    }
    expect(lines.at(-1)).toBe(`job ${parent}: finished`);

    // `jobs`: the children listed under their workflow; `--parent` lists only them.
    const table = await cli(['jobs'], { env: serverEnv(server) });
    expect(table.code, table.stderr).toBe(0);
    const rows = table.stdout.trim().split('\n').slice(1).map((row) => row.trim().split(/\s{2,}/));
    expect(rows.map((row) => [row[0], row[1]])).toEqual([
      [String(parent), 'train-then-predict@1'],
      [String(train), '└ train: train-epochs@1'],
      [String(predict), '└ predict: predict@1'],
    ]);
    const children = await cli(['jobs', '--parent', String(parent), '--json'], { env: serverEnv(server) });
    expect((JSON.parse(children.stdout) as { pk: number }[]).map((job) => job.pk)).toEqual([predict, train]);
    const alone = await cli(['jobs', '--parent', String(parent)], { env: serverEnv(server) });
    expect(alone.stdout).toContain(`${parent}/train: train-epochs@1`);
    expectOneLineError(await cli(['jobs', '--parent', 'x'], { env: serverEnv(server) }), 64, /--parent must be a positive integer/);
    const templates = await cli(['templates', 'list'], { env: serverEnv(server) });
    expect(templates.stdout).toMatch(/train-then-predict\s+1\s+workflow\n/);
  });
});

describe('submit on a workflow', () => {
  it('takes the workflow’s parameters by their node:name, with or without a type, and refuses unknown ones (64)', async () => {
    const server = await serverWithWorkflow();
    const env = serverEnv(server);
    const typed = await cli(['submit', 'train-then-predict', '--param', 'train:epochs:int=4', '--param', 'predict:items=2', '--json'], { env });
    expect(typed.code, typed.stderr).toBe(0);
    expect(JSON.parse(typed.stdout).parameter_values).toEqual({ 'train:epochs': { value: 4, type: 'int' }, 'predict:items': { value: 2, type: 'int' } });
    expectOneLineError(
      await cli(['submit', 'train-then-predict', '--param', 'train:lr=0.1'], { env }),
      64,
      /--param train:lr: template 'train-then-predict' has no such parameter \(settable: train:epochs, train:epoch_seconds, predict:items\)/,
    );
    expectOneLineError(await cli(['submit', 'train-then-predict', '--param', 'train:body=x'], { env }), 64, /--param train:body: the parameter is const/);
  });
});

describe('watch of a workflow', () => {
  it('exits 1 with the reason when a child fails', async () => {
    const server = await serverWithWorkflow();
    const env = serverEnv(server);
    const parent = Number((await cli(['submit', 'train-then-predict'], { env })).stdout.trim());
    const watching = startCli(['watch', String(parent)], { env, timeoutMs: 60_000 });
    await watching.stdoutMatches(/watching \(live updates\)/);
    const train = await child(server, parent, 'train');
    const node = await TestNode.create(server);
    await node.acquireAndStart(train);
    await node.finish(train, 'exit status 2: no data');
    const result = await watching.result;
    expectOneLineError(result, 1, new RegExp(`^ufdl-agent: job ${parent} errored: Error in child job 'train': exit status 2: no data$`));
    expect(result.stdout).toContain(`train (job ${train}): errored (node ${node.pk}): exit status 2: no data`);
  });
});
