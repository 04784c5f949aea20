/**
 * Running a workflow on the server, a node driven over the API (no agent): create-job on a
 * meta-template, children created as their dependencies finish with outputs wired into inputs, the
 * parent's phase following its children, cancel cascading, reset and abort of a child (bug B16 in the
 * reference), nodes never acting on a parent. Expected values follow the reference's code
 * (`core_app/models/jobs/_Job.py`, `meta/_MetaTemplate.py`), not this server.
 */
import { describe, expect, it } from 'vitest';
import { UfdlClient } from '../../src/client/api.js';
import { pollFilter } from '../../src/protocol/filter.js';
import type { JobNotification } from '../../src/protocol/wire.js';
import { until } from '../helpers/agent.js';
import { startWithFixtures, type Fixtures } from '../helpers/fixtures.js';
import { ADMIN_PASSWORD, ADMIN_USER } from '../helpers/server.js';
import { runSpec } from './support/template-specs.js';
import {
  childrenOf,
  consumerSpec,
  createPipelineJob,
  getJob,
  importDiamond,
  importPipeline,
  importSpec,
  PIPELINE_VALUES,
  pipelineSpec,
  producerSpec,
  runChild,
} from './support/workflow-specs.js';

/** The job JSON keys in the reference serialiser's order (`serialisers/jobs/_JobSerialiser.py`). */
const JOB_KEYS = ['pk', 'template', 'parent', 'start_time', 'end_time', 'error_reason', 'input_values', 'parameter_values', 'node', 'outputs', 'description', 'is_cancelled', 'creator', 'creation_time', 'deletion_time'];

/** Every notification sent to watchers of `pk` from now on. */
function watch(fx: Fixtures, pk: number): { messages: JobNotification[]; opened: Promise<void>; close(): void } {
  const client = new UfdlClient({ serverUrl: fx.url, username: ADMIN_USER, password: ADMIN_PASSWORD });
  const messages: JobNotification[] = [];
  let open = false;
  const handle = client.watchJob(pk, (m) => messages.push(m), { onOpen: () => (open = true) });
  const close = () => {
    handle.close();
    client.close();
  };
  return { messages, opened: until(() => open, 10_000, 'the watch to open'), close };
}

async function acquirable(fx: Fixtures): Promise<number[]> {
  const res = await fx.call('POST', '/v1/jobs/list', { json: pollFilter() });
  return (res.body as any[]).map((job) => job.pk);
}

describe('a workflow run', () => {
  it('creates the first child, wires its output into the next, follows the children to the end', async () => {
    const fx = await startWithFixtures();
    const template = await importPipeline(fx);
    const node = fx.node();
    const parent = await createPipelineJob(fx, template);

    // The parent, as the reference serialises a job: values as given (named node:name), no node.
    expect(Object.keys(parent)).toEqual(JOB_KEYS);
    expect(parent).toMatchObject({
      template: { pk: template, name: 'pipeline', version: 1 },
      parent: null,
      start_time: null,
      node: null,
      outputs: [],
      input_values: PIPELINE_VALUES.input_values,
      parameter_values: PIPELINE_VALUES.parameter_values,
    });

    // Only the node without dependencies exists yet; it takes its prefixed values and the override.
    let children = await childrenOf(fx, parent.pk);
    expect(Object.keys(children)).toEqual(['train']);
    const train = children.train;
    expect(Object.keys(train)).toEqual(JOB_KEYS);
    expect(train).toMatchObject({
      parent: parent.pk,
      template: { name: 'producer', version: 1 },
      description: "child job 'train' of meta-job pipeline v1",
      input_values: { seed: { value: 7, type: 'int' } },
      parameter_values: { epochs: { value: 3, type: 'int' } },
      creator: parent.creator,
    });
    // Nodes see the child, never the parent; acquiring the parent is forbidden (JobIsWorkable).
    expect(await acquirable(fx)).toEqual([train.pk]);
    const acquireParent = await fx.call('GET', `/v1/jobs/${parent.pk}/acquire`, { node });
    expect(acquireParent.status).toBe(403);

    const watcher = watch(fx, parent.pk);
    await watcher.opened;
    await runChild(fx, node, train.pk, { progress: [0.5], outputs: { 'model.bin': 'BLOB', report: 'JSON' } });

    // The finish created the next child, its model the train job's model.bin output.
    children = await childrenOf(fx, parent.pk);
    expect(Object.keys(children)).toEqual(['train', 'predict']);
    const model = (await getJob(fx, train.pk)).outputs.find((o: any) => o.name === 'model.bin');
    expect(children.predict).toMatchObject({
      description: "child job 'predict' of meta-job pipeline v1",
      input_values: { label: { value: 'cats', type: 'str' }, model: { value: model.pk, type: 'JobOutput<BLOB>' } },
      parameter_values: { items: { value: 4, type: 'int' } },
    });
    let after = await getJob(fx, parent.pk);
    expect(after.start_time).not.toBeNull();
    expect(after.end_time).toBeNull();
    // The reference's `_finish_meta`: the child's outputs become the parent's, named node:name.
    expect(after.outputs.map((o: any) => o.name)).toEqual(['train:model.bin', 'train:report']);
    const copied = await fx.call('GET', `/v1/jobs/${parent.pk}/outputs/${encodeURIComponent('train:model.bin')}/BLOB`);
    expect(copied.text).toBe(`model.bin of job ${train.pk}`);

    await runChild(fx, node, children.predict.pk, { progress: [0.5], outputs: { 'predictions.csv': 'BLOB' } });
    after = await getJob(fx, parent.pk);
    expect(after.end_time).not.toBeNull();
    expect(after.error_reason).toBeNull();
    expect(after.outputs.map((o: any) => o.name)).toEqual(['train:model.bin', 'train:report', 'predict:predictions.csv']);
    expect(fx.jobRow(parent.pk)!.progress_amount).toBe(1);
    expect(await acquirable(fx)).toEqual([]);

    // Watchers of the parent: its start, a progress frame per child transition naming the child
    // (the reference's `{triggered_by, progress}`, extended), its finish.
    await until(() => watcher.messages.some((m) => m.transition === 'finish'), 10_000, 'the parent finish');
    watcher.close();
    const frames = watcher.messages;
    expect(frames.every((m) => m.pk === parent.pk)).toBe(true);
    expect(frames[0]).toMatchObject({ transition: 'start', transition_data: { triggered_by: train.pk, child: 'train', child_transition: 'start' } });
    const trainProgress = frames.find((m) => m.transition === 'progress' && m.transition_data.child_transition === 'progress');
    expect(trainProgress).toMatchObject({ progress: 0.25, transition_data: { triggered_by: train.pk, progress: 0.5, child: 'train' } });
    expect(frames.some((m) => m.transition_data.child === 'train' && m.transition_data.child_transition === 'finish')).toBe(true);
    expect(frames.at(-1)).toMatchObject({ transition: 'finish', progress: 1, transition_data: { triggered_by: children.predict.pk, child: 'predict', child_transition: 'finish' } });
  });

  it('creates every node without dependencies at once, and a node with two dependencies once both finished', async () => {
    const fx = await startWithFixtures();
    const template = await importDiamond(fx);
    const parent = await createPipelineJob(fx, template, { input_values: { 'a:seed': { value: 1, type: 'int' }, 'b:seed': { value: 2, type: 'int' } } });
    let children = await childrenOf(fx, parent.pk);
    expect(Object.keys(children).sort()).toEqual(['a', 'b']);
    const node = fx.node();
    await runChild(fx, node, children.a.pk, { outputs: { 'model.bin': 'BLOB' } });
    expect(Object.keys(await childrenOf(fx, parent.pk)).sort()).toEqual(['a', 'b']);
    await runChild(fx, node, children.b.pk, { outputs: { report: 'JSON' } });
    children = await childrenOf(fx, parent.pk);
    expect(children.join.input_values).toMatchObject({ model: { type: 'JobOutput<BLOB>' }, other: { type: 'JobOutput<JSON>' } });
    // Progress: the mean over every node of the graph, created or not.
    expect(fx.jobRow(parent.pk)!.progress_amount).toBeCloseTo(2 / 3);
  });
});

describe('a child in error', () => {
  it('errors the parent with the reference’s reason and creates nothing further', async () => {
    const fx = await startWithFixtures();
    const template = await importPipeline(fx);
    const parent = await createPipelineJob(fx, template);
    const { train } = await childrenOf(fx, parent.pk);
    await runChild(fx, fx.node(), train.pk, { error: 'exit status 2' });
    const after = await getJob(fx, parent.pk);
    expect(after.error_reason).toBe("Error in child job 'train':\nexit status 2");
    expect(after.end_time).not.toBeNull();
    expect(Object.keys(await childrenOf(fx, parent.pk))).toEqual(['train']);
    expect(await acquirable(fx)).toEqual([]);
  });

  it('a reset of the child (a 500 in the reference, B16) makes the workflow run again, to the end', async () => {
    const fx = await startWithFixtures();
    const template = await importPipeline(fx);
    const parent = await createPipelineJob(fx, template);
    const node = fx.node();
    const { train } = await childrenOf(fx, parent.pk);
    await runChild(fx, node, train.pk, { error: 'out of memory' });
    const reset = await fx.call('DELETE', `/v1/jobs/${train.pk}/reset`, { node });
    expect(reset.status, reset.text).toBe(200);
    let after = await getJob(fx, parent.pk);
    expect(after).toMatchObject({ end_time: null, error_reason: null });
    expect(after.start_time).not.toBeNull();
    // Still held by the node (reset keeps it); it runs again and the workflow goes on.
    await fx.call('POST', `/v1/jobs/${train.pk}/start`, { node, json: { send_notification: 'email' } });
    await fx.call('POST', `/v1/jobs/${train.pk}/outputs/model.bin/BLOB`, { node, body: 'm', headers: { 'content-disposition': 'attachment; filename=m' } });
    await fx.call('POST', `/v1/jobs/${train.pk}/finish`, { node, json: { success: true, send_notification: 'email' } });
    const { predict } = await childrenOf(fx, parent.pk);
    await runChild(fx, node, predict.pk);
    after = await getJob(fx, parent.pk);
    expect(after.end_time).not.toBeNull();
    expect(after.error_reason).toBeNull();
  });

  it('an admin abort of the errored child recovers the parent; a workflow itself cannot be aborted', async () => {
    const fx = await startWithFixtures();
    const template = await importPipeline(fx);
    const parent = await createPipelineJob(fx, template);
    const { train } = await childrenOf(fx, parent.pk);
    await runChild(fx, fx.node(), train.pk, { error: 'node crashed' });
    const abortParent = await fx.call('DELETE', `/v1/jobs/${parent.pk}/abort`);
    expect(abortParent.status).toBe(406);
    expect(abortParent.body.detail).toMatch(/meta-job .*cannot be aborted/);
    const abort = await fx.call('DELETE', `/v1/jobs/${train.pk}/abort`);
    expect(abort.status, abort.text).toBe(200);
    expect(await getJob(fx, parent.pk)).toMatchObject({ error_reason: null, end_time: null });
    expect(await acquirable(fx)).toEqual([train.pk]);
  });

  it('a producer that finished without the wired output errors the parent, as the reference does', async () => {
    const fx = await startWithFixtures();
    const template = await importPipeline(fx);
    const parent = await createPipelineJob(fx, template);
    const { train } = await childrenOf(fx, parent.pk);
    await runChild(fx, fx.node(), train.pk, { outputs: { report: 'JSON' } });
    const after = await getJob(fx, parent.pk);
    expect(after.error_reason).toBe("Error creating child-jobs: Job-dependency 'train' produced no output 'model.bin' of type BLOB");
    expect(Object.keys(await childrenOf(fx, parent.pk))).toEqual(['train']);
  });
});

describe('a template that a workflow runs', () => {
  it('cannot be hard-deleted: a running workflow still creates its node when the node’s dependencies finish', async () => {
    const fx = await startWithFixtures();
    await importSpec(fx, producerSpec());
    const consumer = await importSpec(fx, consumerSpec());
    const template = await importSpec(fx, pipelineSpec());
    const parent = await createPipelineJob(fx, template);
    // No job refers to the consumer yet: only the workflow's graph does.
    const refused = await fx.call('DELETE', `/v1/job-templates/${consumer}/hard`);
    const { train } = await childrenOf(fx, parent.pk);
    await runChild(fx, fx.node(), train.pk, { outputs: { 'model.bin': 'BLOB', report: 'JSON' } });
    expect(Object.keys(await childrenOf(fx, parent.pk)).sort()).toEqual(['predict', 'train']);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ detail: expect.stringContaining(`workflow template ${template} runs it`) });
  });
});

describe('cancel', () => {
  it('of the parent cancels every unfinished child; nothing stays acquirable; the node finishes its cancelled child silently', async () => {
    const fx = await startWithFixtures();
    await importSpec(fx, producerSpec());
    await importSpec(fx, consumerSpec());
    const template = await importSpec(fx, pipelineSpec({ name: 'two-roots' }, {
      nodes: { a: { name: 'producer' }, b: { name: 'producer' }, c: { name: 'consumer' } },
      dependencies: [{ from_node: 'a', from_output: 'model.bin', to_node: 'c', to_input: 'model' }],
    }));
    const parent = await createPipelineJob(fx, template, { input_values: { 'a:seed': { value: 1, type: 'int' }, 'b:seed': { value: 2, type: 'int' }, 'c:label': { value: 'x', type: 'str' } } });
    const { a, b } = await childrenOf(fx, parent.pk);
    const node = fx.node();
    await runChild(fx, node, a.pk, { finish: false });
    const watcherA = watch(fx, a.pk);
    await watcherA.opened;

    const cancelChild = await fx.call('DELETE', `/v1/jobs/${a.pk}/cancel`);
    expect(cancelChild.status).toBe(406);
    expect(cancelChild.body.detail).toMatch(/cancel\nJob is a child job; cancel its workflow, job \d+\./);

    const cancel = await fx.call('DELETE', `/v1/jobs/${parent.pk}/cancel`);
    expect(cancel.status, cancel.text).toBe(200);
    expect(cancel.body.is_cancelled).toBe(true);
    expect((await getJob(fx, a.pk)).is_cancelled).toBe(true);
    expect((await getJob(fx, b.pk)).is_cancelled).toBe(true);
    expect(await acquirable(fx)).toEqual([]);
    // The running child's own watchers (its node) hear of the cancel.
    await until(() => watcherA.messages.some((m) => m.transition === 'cancel'), 10_000, 'the child cancel');
    watcherA.close();
    // The node's clean-up finish is the usual silent 200, and creates nothing.
    const finish = await fx.call('POST', `/v1/jobs/${a.pk}/finish`, { node, json: { success: true, send_notification: 'email' } });
    expect(finish.status).toBe(200);
    expect(Object.keys(await childrenOf(fx, parent.pk)).sort()).toEqual(['a', 'b']);
    expect(await acquirable(fx)).toEqual([]);
    const acquireB = await fx.call('GET', `/v1/jobs/${b.pk}/acquire`, { node });
    expect(acquireB.status).toBe(406);
  });
});

describe('hard delete of a child', () => {
  it('is refused while its workflow has not ended (the workflow would create the node again); once it ended, the child goes for good', async () => {
    const fx = await startWithFixtures();
    const template = await importDiamond(fx);
    const parent = await createPipelineJob(fx, template, { input_values: { 'a:seed': { value: 1, type: 'int' }, 'b:seed': { value: 2, type: 'int' } } });
    const { a, b } = await childrenOf(fx, parent.pk);
    const refused = await fx.call('DELETE', `/v1/jobs/${b.pk}/hard`);
    expect(refused.status, refused.text).toBe(406);
    expect(refused.body.detail).toBe(
      `Job ${b.pk} is a child of workflow job ${parent.pk}, which has not ended: the workflow would create its node 'b' again. ` +
        `Cancel the workflow (DELETE /v1/jobs/${parent.pk}/cancel) first, then hard-delete the child`,
    );
    // Its sibling's finish creates nothing twice, and b is still the one job of its node.
    await runChild(fx, fx.node(), a.pk, { outputs: { 'model.bin': 'BLOB' } });
    expect((await childrenOf(fx, parent.pk)).b.pk).toBe(b.pk);

    // An ended workflow creates nothing more: after its cancel, its children may be hard-deleted.
    expect((await fx.call('DELETE', `/v1/jobs/${parent.pk}/cancel`)).status).toBe(200);
    const deleted = await fx.call('DELETE', `/v1/jobs/${b.pk}/hard`);
    expect(deleted.status, deleted.text).toBe(200);
    expect(Object.keys(await childrenOf(fx, parent.pk))).toEqual(['a']);
  });
});

describe('create-job on a meta-template', () => {
  it('checks the workflow’s inputs and parameters like any job’s, and stores nothing when they are wrong', async () => {
    const fx = await startWithFixtures();
    const template = await importPipeline(fx);
    const cases: Array<[string, Record<string, unknown>, number, RegExp]> = [
      ['a missing input', { input_values: { 'train:seed': { value: 1, type: 'int' } } }, 406, /No input value provided for input 'predict:label'/],
      ['an unknown parameter', { ...PIPELINE_VALUES, parameter_values: { 'train:lr': { value: 1, type: 'float' } } }, 406, /Unknown job parameters: train:lr/],
      ['a const parameter', { ...PIPELINE_VALUES, parameter_values: { 'train:body': { value: 'x', type: 'str' } } }, 406, /train:body is const/],
      ['a bad value', { ...PIPELINE_VALUES, parameter_values: { 'train:epochs': { value: 'x', type: 'int' } } }, 400, /Bad value for parameter 'train:epochs' of type int/],
      ['an unknown child override', { ...PIPELINE_VALUES, child_notification_overrides: { nope: { actions: {} } } }, 406, /Unknown descendant for job from template #\d+: nope/],
    ];
    for (const [what, body, status, detail] of cases) {
      const res = await fx.call('POST', `/v1/job-templates/${template}/create-job`, { json: body });
      expect(res.status, `${what}: ${res.text}`).toBe(status);
      expect(res.body.detail, what).toMatch(detail);
    }
    expect((fx.db.prepare('SELECT COUNT(*) AS n FROM jobs').get() as { n: number }).n).toBe(0);
    const ok = await fx.call('POST', `/v1/job-templates/${template}/create-job`, { json: { ...PIPELINE_VALUES, child_notification_overrides: { train: { actions: {} } } } });
    expect(ok.status, ok.text).toBe(200);
  });
});

/** A template as a stored graph names it. */
type TemplateRef = { pk: number; name: string; version: number };

/** Give the stored workflow `pk` this graph, written past the import's checks, as an import before the bounds could. */
function storeGraph(fx: Fixtures, pk: number, nodes: Record<string, TemplateRef>, dependencies: unknown[] = []): void {
  const graph = { nodes: Object.fromEntries(Object.entries(nodes).map(([name, template]) => [name, { template }])), dependencies };
  fx.db.prepare('UPDATE templates SET graph = ? WHERE pk = ?').run(JSON.stringify(graph), pk);
}

/** `count` nodes named n0, n1, … of `template`. */
function nodesOfRef(count: number, template: TemplateRef): Record<string, TemplateRef> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`n${i}`, template]));
}

const jobCount = (fx: Fixtures) => (fx.db.prepare('SELECT COUNT(*) AS n FROM jobs').get() as { n: number }).n;

/** Import a workflow `name` of the single node `step` running `child`; returns it as a graph names it. */
async function importWrapper(fx: Fixtures, name: string, child: string): Promise<TemplateRef> {
  const pk = await importSpec(fx, { ...pipelineSpec({ name }), specific: { nodes: { step: { name: child } }, dependencies: [] } });
  return { pk, name, version: 1 };
}

/** `step`, a template with no inputs, and `level1` … `level<n>`, each a workflow of the one before (level1: of `step`). */
async function importChain(fx: Fixtures, levels: number): Promise<TemplateRef[]> {
  await importSpec(fx, runSpec({ name: 'step' }, { inputs: [], outputs: {} }));
  const chain: TemplateRef[] = [];
  for (let level = 1; level <= levels; level++) chain.push(await importWrapper(fx, `level${level}`, level === 1 ? 'step' : `level${level - 1}`));
  return chain;
}

describe('create-job on a workflow stored before the import bounds', () => {
  /** Give the stored workflow `pk` a graph of `count` nodes of `template`, as an import before the bounds could. */
  function storeWideGraph(fx: Fixtures, pk: number, template: TemplateRef, count: number): void {
    storeGraph(fx, pk, nodesOfRef(count, template));
  }
  const nodesOf = (count: number, name: string) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`n${i}`, { name }]));
  const STEP = (fx: Fixtures): TemplateRef => ({ pk: (fx.db.prepare("SELECT pk FROM templates WHERE name = 'step'").get() as { pk: number }).pk, name: 'step', version: 1 });
  const AGAIN = 'it was stored without this limit being checked; import it again, as smaller workflows';

  /** create-job on `template`: a 400 (UFDL_ERR_TEMPLATE_BAD) with `detail`, and not one job stored. */
  async function expectRefused(fx: Fixtures, template: number, detail: string | RegExp, what = ''): Promise<void> {
    const before = jobCount(fx);
    const res = await fx.call('POST', `/v1/job-templates/${template}/create-job`, { json: { input_values: {} } });
    expect(res.status, `${what}: ${res.text.slice(0, 300)}`).toBe(400);
    if (typeof detail === 'string') expect(res.body.detail, what).toBe(detail);
    else expect(res.body.detail, what).toMatch(detail);
    expect(jobCount(fx), what).toBe(before);
  }

  it('refuses (400) a workflow nested deeper than four levels, or in itself, and creates nothing', async () => {
    const fx = await startWithFixtures();
    const [, , , level4] = await importChain(fx, 4);
    // Four levels run: import allows them.
    const ok = await fx.call('POST', `/v1/job-templates/${level4!.pk}/create-job`, { json: { input_values: {} } });
    expect(ok.status, ok.text.slice(0, 300)).toBe(200);
    // A fifth level, as import refuses (workflow-templates.test.ts) and once stored: six jobs, the
    // step's outputs copied to its parents under five node names.
    const level5 = await importWrapper(fx, 'level5', 'step');
    storeGraph(fx, level5.pk, { step: level4! });
    await expectRefused(fx, level5.pk, `Workflow template ${level5.pk} ('level5' v1) cannot run: it nests workflows 5 levels deep; at most 4 levels of workflows; ${AGAIN}`);
    // A workflow that runs itself would nest without end (a stack overflow, a 500).
    const loop = await importWrapper(fx, 'loop', 'step');
    const around = await importWrapper(fx, 'around', 'loop');
    storeGraph(fx, loop.pk, { step: around });
    for (const template of [loop, around]) {
      await expectRefused(
        fx,
        template.pk,
        `Workflow template ${template.pk} ('${template.name}' v1) cannot run: a workflow in it runs itself, so workflows would nest without end; at most 4 levels of workflows; ${AGAIN}`,
        template.name,
      );
    }
  });

  it('refuses (400) a graph of no node or more than 100 nodes, or more than 1,000 dependencies, its own or a nested workflow’s', async () => {
    const fx = await startWithFixtures();
    await importChain(fx, 0);
    const step = STEP(fx);
    const some = await importWrapper(fx, 'some', 'step');
    const outer = await importWrapper(fx, 'outer', 'some');
    const which = (template: TemplateRef) => `Workflow template ${template.pk} ('${template.name}' v1) cannot run`;
    const dependency = { from_node: 'n0', from_output: 'o', from_output_type: 'BLOB', to_node: 'n1', to_input: 'i' };
    const cases: Array<[what: string, nodes: Record<string, TemplateRef>, dependencies: unknown[], problem: string]> = [
      ['101 nodes', nodesOfRef(101, step), [], 'its graph has 101 nodes; at most 100'],
      ['no node', {}, [], 'its graph has no node; a workflow needs at least one'],
      ['1,001 dependencies', nodesOfRef(2, step), Array.from({ length: 1001 }, () => dependency), 'its graph has 1001 dependencies; at most 1000'],
    ];
    for (const [what, nodes, dependencies, problem] of cases) {
      storeGraph(fx, some.pk, nodes, dependencies);
      await expectRefused(fx, some.pk, `${which(some)}: ${problem}; ${AGAIN}`, what);
      // The same graph in a workflow nested in another: created with the outer one's job, in its transaction.
      const nested = problem.replace('its graph', `the graph of nested workflow template ${some.pk} ('some' v1)`);
      await expectRefused(fx, outer.pk, `${which(outer)}: ${nested}; ${AGAIN}`, `${what}, nested`);
    }
  });

  it('refuses (400) a node name import refuses: too long for the names of copied outputs, or with a colon', async () => {
    const fx = await startWithFixtures();
    await importChain(fx, 0);
    const step = STEP(fx);
    const some = await importWrapper(fx, 'some', 'step');
    const rule = "a node name is 1-100 letters, digits, '_', '.' or '-', starting with a letter, digit or '_' (no ':')";
    for (const name of ['n'.repeat(101), 'a:b']) {
      storeGraph(fx, some.pk, { [name]: step });
      await expectRefused(
        fx,
        some.pk,
        `Workflow template ${some.pk} ('some' v1) cannot run: node '${name}' of its graph: ${rule}; it was stored without this limit being checked; import it again with other node names`,
        name,
      );
    }
  });

  it('refuses (400) a nested workflow whose nodes declare more than 4 MiB, as it would refuse that workflow', async () => {
    const fx = await startWithFixtures();
    const parameters = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`p${i}`, { types: ['int'], default: i, help: 'A parameter.' }]));
    const big = await importSpec(fx, runSpec({ name: 'big' }, { inputs: [], outputs: {}, parameters }));
    const some = await importSpec(fx, { ...pipelineSpec({ name: 'some' }), specific: { nodes: nodesOf(1, 'big'), dependencies: [] } });
    const outer = await importWrapper(fx, 'outer', 'some');
    storeWideGraph(fx, some, { pk: big, name: 'big', version: 1 }, 100);
    await expectRefused(
      fx,
      outer.pk,
      new RegExp(
        `^Workflow template ${outer.pk} \\('outer' v1\\) cannot run: the inputs, parameters and outputs nested workflow template ${some} \\('some' v1\\) ` +
          'inherits from its nodes take \\d+ bytes as JSON; at most 4194304; it was stored without this limit being checked',
      ),
    );
  });

  it('refuses (400) a workflow whose run would create more than 1,000 jobs, and creates none', async () => {
    const fx = await startWithFixtures();
    await importSpec(fx, runSpec({ name: 'step' }, { inputs: [], outputs: {} }));
    // 101 jobs a run: within the bounds.
    const wide = await importSpec(fx, { ...pipelineSpec({ name: 'wide' }), specific: { nodes: nodesOf(100, 'step'), dependencies: [] } });
    const outer = await importSpec(fx, { ...pipelineSpec({ name: 'outer' }), specific: { nodes: { n0: { name: 'wide' } }, dependencies: [] } });
    // Ten of them, 1 + 10 × 101 jobs, as import now refuses (workflow-templates.test.ts) and once stored.
    storeWideGraph(fx, outer, { pk: wide, name: 'wide', version: 1 }, 10);
    const res = await fx.call('POST', `/v1/job-templates/${outer}/create-job`, { json: { input_values: {} } });
    expect(res.status, res.text.slice(0, 300)).toBe(400);
    expect(res.body.detail).toBe(
      `Workflow template ${outer} ('outer' v1) cannot run: a run would create 1011 jobs (its own, its nodes' and those of the workflows they run); ` +
        'at most 1000; it was stored without this limit being checked; import it again, as smaller workflows',
    );
    expect(jobCount(fx)).toBe(0);
  });

  it('refuses (400) a workflow whose nodes declare more than 4 MiB of inputs, parameters and outputs', async () => {
    const fx = await startWithFixtures();
    // About 70 kB of parameters; 100 nodes of it are 7 MB.
    const parameters = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`p${i}`, { types: ['int'], default: i, help: 'A parameter.' }]));
    const big = await importSpec(fx, runSpec({ name: 'big' }, { inputs: [], outputs: {}, parameters }));
    const some = await importSpec(fx, { ...pipelineSpec({ name: 'some' }), specific: { nodes: nodesOf(1, 'big'), dependencies: [] } });
    storeWideGraph(fx, some, { pk: big, name: 'big', version: 1 }, 100);
    const res = await fx.call('POST', `/v1/job-templates/${some}/create-job`, { json: { input_values: {} } });
    expect(res.status, res.text.slice(0, 300)).toBe(400);
    expect(res.body.detail).toMatch(
      new RegExp(`^Workflow template ${some} \\('some' v1\\) cannot run: the inputs, parameters and outputs it inherits from its nodes take \\d+ bytes as JSON; at most 4194304; it was stored without this limit being checked`),
    );
    expect(jobCount(fx)).toBe(0);
  });
});

/** Give the stored workflow `pk` this graph as stored JSON (overrides and output types included), past the import's checks. */
function storeRawGraph(fx: Fixtures, pk: number, graph: { nodes: Record<string, unknown>; dependencies: unknown[] }): void {
  fx.db.prepare('UPDATE templates SET graph = ? WHERE pk = ?').run(JSON.stringify(graph), pk);
}

/** What a stored graph that breaks the import's rules is refused with, after the rule it breaks. */
const UNCHECKED = 'it was stored without this check being made; import it again with the graph corrected';

/**
 * Graphs as an older import or a hand edit could store them, each breaking one rule import enforces
 * (`workflow-graph-rules.ts`): `producer` and `consumer` nodes as the pipeline's, and the problem
 * create-job names. `ref(name)` is a stored template as a graph names it.
 */
function brokenGraphs(ref: (name: string) => TemplateRef): Array<[what: string, graph: { nodes: Record<string, unknown>; dependencies: unknown[] }, problem: string]> {
  const feed = (from_node: string, from_output: string, to_node: string, to_input: string) => ({ from_node, from_output, from_output_type: 'BLOB', to_node, to_input });
  const train = { template: ref('producer') };
  const predict = { template: ref('consumer') };
  return [
    [
      'a cycle',
      { nodes: { a: predict, b: predict }, dependencies: [feed('a', 'predictions.csv', 'b', 'model'), feed('b', 'predictions.csv', 'a', 'model')] },
      "graph.dependencies: the graph has a cycle through the nodes 'a', 'b'",
    ],
    [
      'a dependency on a node that does not exist',
      { nodes: { train, predict }, dependencies: [feed('ghost', 'model.bin', 'predict', 'model')] },
      "graph.dependencies[0].from_node: unknown node 'ghost' (nodes: train, predict)",
    ],
    [
      'a dependency on an output its producer does not declare',
      { nodes: { train, predict }, dependencies: [feed('train', 'weights.bin', 'predict', 'model')] },
      "graph.dependencies[0].from_output: template 'producer' (node 'train') declares no output 'weights.bin' (outputs: model.bin, report)",
    ],
    [
      'a dependency into an input its consumer does not have',
      { nodes: { train, predict }, dependencies: [feed('train', 'model.bin', 'predict', 'weights')] },
      "graph.dependencies[0].to_input: template 'consumer' (node 'predict') has no input 'weights' (inputs: model, label)",
    ],
    [
      'an override of a parameter its template does not have',
      { nodes: { train: { ...train, parameter_default_overrides: { lr: { default: 0.1, default_type: 'float' } } }, predict }, dependencies: [feed('train', 'model.bin', 'predict', 'model')] },
      "graph.nodes.train.parameter_default_overrides.lr: template 'producer' has no parameter 'lr' (parameters: epochs, body)",
    ],
    [
      // The producer's row edited after import: a run would look up and hand on an output of the stale type.
      'a dependency whose stored output type is not the one its producer declares',
      { nodes: { train, predict }, dependencies: [{ ...feed('train', 'model.bin', 'predict', 'model'), from_output_type: 'JSON' }] },
      "graph.dependencies[0].from_output_type: 'JSON' is stored, but template 'producer' (node 'train') declares output 'model.bin' as BLOB",
    ],
    [
      'a node of a template that is not stored',
      { nodes: { train: { template: { pk: 9999, name: 'gone', version: 1 } } }, dependencies: [] },
      "graph.nodes.train: unknown child template: template 9999 ('gone' v1) is not stored",
    ],
  ];
}

/** A stored template by name (version 1), as a graph names it. */
function refOf(fx: Fixtures): (name: string) => TemplateRef {
  return (name) => ({ pk: (fx.db.prepare('SELECT pk FROM templates WHERE name = ? AND version = 1').get(name) as { pk: number }).pk, name, version: 1 });
}

describe('create-job on a workflow whose stored graph breaks the import’s rules', () => {
  it('refuses (400) a cycle, wiring to a node, output or input that does not exist, an override of an unknown parameter, a stale output type: its own graph’s or a nested workflow’s', async () => {
    const fx = await startWithFixtures();
    const pipeline = await importPipeline(fx);
    const outer = await importWrapper(fx, 'outer', 'pipeline');
    for (const [what, graph, problem] of brokenGraphs(refOf(fx))) {
      storeRawGraph(fx, pipeline, graph);
      // Values the workflows' stored declarations accept: without the check, each run is created.
      const nested = { input_values: { 'step:train:seed': { value: 7, type: 'int' }, 'step:predict:label': { value: 'cats', type: 'str' } } };
      for (const [template, name, where, values] of [
        [pipeline, 'pipeline', '', PIPELINE_VALUES],
        [outer.pk, 'outer', `nested workflow template ${pipeline} ('pipeline' v1): `, nested],
      ] as const) {
        const before = jobCount(fx);
        const res = await fx.call('POST', `/v1/job-templates/${template}/create-job`, { json: values });
        expect(res.status, `${what} (${name}): ${res.text.slice(0, 300)}`).toBe(400);
        expect(res.body.detail, `${what} (${name})`).toBe(`Workflow template ${template} ('${name}' v1) cannot run: ${where}${problem}; ${UNCHECKED}`);
        expect(jobCount(fx), `${what} (${name})`).toBe(before);
      }
    }
  });
});

/**
 * `inner` runs the consumer; `outer` feeds it the producer's model: the inner workflow's job is
 * created only once the producer (node `train`) finished.
 */
async function importOuterFeedingInner(fx: Fixtures): Promise<{ inner: TemplateRef; outer: number }> {
  await importSpec(fx, producerSpec());
  await importSpec(fx, consumerSpec());
  const inner = await importWrapper(fx, 'inner', 'consumer');
  const outer = await importSpec(fx, pipelineSpec({ name: 'outer' }, {
    nodes: { train: { name: 'producer' }, w: { name: 'inner' } },
    dependencies: [{ from_node: 'train', from_output: 'model.bin', to_node: 'w', to_input: 'step:model' }],
  }));
  return { inner, outer };
}

/** A run of {@link importOuterFeedingInner}'s `outer`. */
function createOuterRun(fx: Fixtures, outer: number): Promise<any> {
  return createPipelineJob(fx, outer, { input_values: { 'train:seed': { value: 1, type: 'int' }, 'w:step:label': { value: 'x', type: 'str' } } });
}

describe('a running workflow that reaches a nested workflow stored past the bounds', () => {
  it('errors when the nested workflow’s job would be created, its depth counted from the top, and creates nothing of it', async () => {
    const fx = await startWithFixtures();
    const [, , level3] = await importChain(fx, 3);
    const { inner, outer } = await importOuterFeedingInner(fx);
    const parent = await createOuterRun(fx, outer);
    // Meanwhile (a run create-job let through before it checked), `inner` gains three levels below
    // it: four on its own, as import allows, but five inside `outer`.
    storeGraph(fx, inner.pk, { step: level3! });
    const { train } = await childrenOf(fx, parent.pk);
    const before = jobCount(fx);
    await runChild(fx, fx.node(), train.pk, { outputs: { 'model.bin': 'BLOB' } });
    const after = await getJob(fx, parent.pk);
    expect(after.error_reason).toBe(
      `Error creating child-jobs: Workflow template ${inner.pk} ('inner' v1) cannot run: it would nest workflows 5 levels deep, ` +
        'counting the 1 workflow it runs in; at most 4 levels of workflows; it was stored without this limit being checked; import it again, as smaller workflows',
    );
    expect(Object.keys(await childrenOf(fx, parent.pk))).toEqual(['train']);
    expect(jobCount(fx)).toBe(before);
  });
});

describe('a running workflow that reaches a nested workflow whose stored graph breaks the import’s rules', () => {
  it('errors when the nested workflow’s job would be created (a cycle would leave it waiting for good), and creates nothing of it', async () => {
    const fx = await startWithFixtures();
    const { inner, outer } = await importOuterFeedingInner(fx);
    const imported = (fx.db.prepare('SELECT graph FROM templates WHERE pk = ?').get(inner.pk) as { graph: string }).graph;
    for (const [what, graph, problem] of brokenGraphs(refOf(fx))) {
      fx.db.prepare('UPDATE templates SET graph = ? WHERE pk = ?').run(imported, inner.pk);
      const parent = await createOuterRun(fx, outer);
      // Meanwhile (a run create-job let through before it checked graphs), `inner` gets the broken graph.
      storeRawGraph(fx, inner.pk, graph);
      const { train } = await childrenOf(fx, parent.pk);
      const before = jobCount(fx);
      await runChild(fx, fx.node(), train.pk, { outputs: { 'model.bin': 'BLOB' } });
      const after = await getJob(fx, parent.pk);
      expect(after.error_reason, what).toBe(`Error creating child-jobs: Workflow template ${inner.pk} ('inner' v1) cannot run: ${problem}; ${UNCHECKED}`);
      expect(after.end_time, what).not.toBeNull();
      expect(Object.keys(await childrenOf(fx, parent.pk)), what).toEqual(['train']);
      expect(jobCount(fx), what).toBe(before);
    }
  });
});

describe('a running workflow that reaches a nested workflow whose template stored a type that cannot be read', () => {
  it('errors naming the type, and the job whose end reached it still finishes', async () => {
    const fx = await startWithFixtures();
    const { inner, outer } = await importOuterFeedingInner(fx);
    const parent = await createOuterRun(fx, outer);
    // Meanwhile, `inner` overrides the consumer's `items`, whose stored type a hand edit made unreadable.
    storeRawGraph(fx, inner.pk, { nodes: { step: { template: refOf(fx)('consumer'), parameter_default_overrides: { items: { default: 3, default_type: 'int' } } } }, dependencies: [] });
    const consumer = refOf(fx)('consumer').pk;
    const parameters = (fx.db.prepare('SELECT parameters FROM templates WHERE pk = ?').get(consumer) as { parameters: string }).parameters;
    expect(parameters).toContain('"int"');
    fx.db.prepare('UPDATE templates SET parameters = ? WHERE pk = ?').run(parameters.replaceAll('"int"', '"Array<int, 1e999>"'), consumer);

    const { train } = await childrenOf(fx, parent.pk);
    await runChild(fx, fx.node(), train.pk, { outputs: { 'model.bin': 'BLOB' } });
    expect((await getJob(fx, train.pk)).end_time).not.toBeNull();
    const after = await getJob(fx, parent.pk);
    expect(after.error_reason).toMatch(
      new RegExp(`^Error creating child-jobs: Workflow template ${inner.pk} \\('inner' v1\\) cannot run: graph: a type stored with it or with a template it runs cannot be read: Error parsing type-string "Array<int, 1e999>"`),
    );
    expect(Object.keys(await childrenOf(fx, parent.pk))).toEqual(['train']);
  });
});

describe('a running workflow whose own stored graph leaves nodes that can never be ready', () => {
  it('errors once every job it made has finished (a run create-job let through before it checked graphs), instead of waiting for good', async () => {
    const fx = await startWithFixtures();
    const loopy = await importPipeline(fx);
    const imported = (fx.db.prepare('SELECT graph FROM templates WHERE pk = ?').get(loopy) as { graph: string }).graph;
    const ref = refOf(fx);
    const feed = (from_node: string, from_output: string, to_node: string, to_input: string) => ({ from_node, from_output, from_output_type: 'BLOB', to_node, to_input });
    const train = { template: ref('producer') };
    const predict = { template: ref('consumer') };
    const cases: Array<[what: string, graph: { nodes: Record<string, unknown>; dependencies: unknown[] }, reason: string]> = [
      [
        'a cycle',
        { nodes: { train, a: predict, b: predict }, dependencies: [feed('a', 'predictions.csv', 'b', 'model'), feed('b', 'predictions.csv', 'a', 'model')] },
        "the nodes 'a', 'b' of workflow template %s ('pipeline' v1) can never run: they wait on one another, in a cycle",
      ],
      [
        'a dependency on a node the graph does not have',
        { nodes: { train, predict }, dependencies: [feed('ghost', 'model.bin', 'predict', 'model')] },
        "the node 'predict' of workflow template %s ('pipeline' v1) can never run: it waits on 'ghost', which the graph does not have",
      ],
    ];
    for (const [what, graph, reason] of cases) {
      fx.db.prepare('UPDATE templates SET graph = ? WHERE pk = ?').run(imported, loopy);
      const parent = await createPipelineJob(fx, loopy);
      // Meanwhile, the workflow's own graph is the broken one: its first node runs as created.
      storeRawGraph(fx, loopy, graph);
      const { train: first } = await childrenOf(fx, parent.pk);
      await runChild(fx, fx.node(), first.pk, { outputs: { 'model.bin': 'BLOB' } });
      const after = await getJob(fx, parent.pk);
      expect(after.error_reason, what).toBe(`Error creating child-jobs: ${reason.replace('%s', String(loopy))}; ${UNCHECKED}`);
      expect(after.end_time, what).not.toBeNull();
      expect(Object.keys(await childrenOf(fx, parent.pk)), what).toEqual(['train']);
    }
  });
});

describe('a workflow run already waiting for good (left by an earlier version)', () => {
  it('is ended by the sweep, naming the nodes that can never run; a healthy run is left alone', async () => {
    const fx = await startWithFixtures({ sweepIntervalSeconds: 0.2 });
    const loopy = await importPipeline(fx);
    const healthy = await createPipelineJob(fx, loopy);
    const stuck = await createPipelineJob(fx, loopy);
    const ref = refOf(fx);
    const feed = (from_node: string, to_node: string) => ({ from_node, from_output: 'predictions.csv', from_output_type: 'BLOB', to_node, to_input: 'model' });
    storeRawGraph(fx, loopy, { nodes: { train: { template: ref('producer') }, a: { template: ref('consumer') }, b: { template: ref('consumer') } }, dependencies: [feed('a', 'b'), feed('b', 'a')] });
    // As an earlier version ended the run's only job: without a step after it, and without a check.
    const { train } = await childrenOf(fx, stuck.pk);
    const now = new Date().toISOString();
    fx.db.prepare('UPDATE jobs SET start_time = ?, end_time = ? WHERE pk = ?').run(now, now, train.pk);

    await until(async () => (await getJob(fx, stuck.pk)).end_time !== null, 20_000, 'the stuck run to end');
    expect((await getJob(fx, stuck.pk)).error_reason).toBe(
      `Error creating child-jobs: the nodes 'a', 'b' of workflow template ${loopy} ('pipeline' v1) can never run: they wait on one another, in a cycle; ${UNCHECKED}`,
    );
    // The healthy run's job is still to be run: the sweep has nothing to do with it.
    const other = await getJob(fx, healthy.pk);
    expect(other.end_time).toBeNull();
    expect(other.error_reason).toBeNull();
  });
});

describe('a workflow inside a workflow', () => {
  it('runs the inner workflow as a node: its outputs reach the outer parent, named by both nodes', async () => {
    const fx = await startWithFixtures();
    await importPipeline(fx);
    const outer = await importSpec(fx, pipelineSpec({ name: 'outer' }, { nodes: { inner: { name: 'pipeline' } }, dependencies: [] }));
    const parent = await createPipelineJob(fx, outer, {
      input_values: { 'inner:train:seed': { value: 7, type: 'int' }, 'inner:predict:label': { value: 'x', type: 'str' } },
    });
    const { inner } = await childrenOf(fx, parent.pk);
    expect(inner.input_values).toEqual({ 'train:seed': { value: 7, type: 'int' }, 'predict:label': { value: 'x', type: 'str' } });
    const node = fx.node();
    const { train } = await childrenOf(fx, inner.pk);
    await runChild(fx, node, train.pk, { outputs: { 'model.bin': 'BLOB' } });
    expect((await getJob(fx, parent.pk)).start_time).not.toBeNull();
    const { predict } = await childrenOf(fx, inner.pk);
    await runChild(fx, node, predict.pk, { outputs: { 'predictions.csv': 'BLOB' } });
    const after = await getJob(fx, parent.pk);
    expect(after.end_time).not.toBeNull();
    expect(after.outputs.map((o: any) => o.name)).toEqual(['inner:train:model.bin', 'inner:predict:predictions.csv']);
  });
});

describe('a copied output past 200 characters', () => {
  it('is found by name on the parent, as any output: download, info, delete', async () => {
    const fx = await startWithFixtures();
    await importSpec(fx, producerSpec());
    // The longest node name, and the longest name a child may give its output: 301 characters copied.
    const node = 'n'.repeat(100);
    const template = await importSpec(fx, pipelineSpec({ name: 'long' }, { nodes: { [node]: { name: 'producer' } }, dependencies: [] }));
    const parent = await createPipelineJob(fx, template, { input_values: { [`${node}:seed`]: { value: 1, type: 'int' } } });
    const child = (await childrenOf(fx, parent.pk))[node];
    const output = 'o'.repeat(200);
    await runChild(fx, fx.node(), child.pk, { outputs: { [output]: 'BLOB' } });
    const copied = `${node}:${output}`;
    expect((await getJob(fx, parent.pk)).outputs.map((o: any) => o.name)).toEqual([copied]);
    const path = `/v1/jobs/${parent.pk}/outputs/${encodeURIComponent(copied)}/BLOB`;
    const download = await fx.call('GET', path);
    expect(download.status, download.text.slice(0, 300)).toBe(200);
    expect(download.text).toBe(`${output} of job ${child.pk}`);
    const info = await fx.call('GET', `${path}/info`);
    expect(info.status, info.text.slice(0, 300)).toBe(200);
    expect(info.body.name).toBe(copied);
    expect((await fx.call('DELETE', path)).status).toBe(200);
    expect((await getJob(fx, parent.pk)).outputs).toEqual([]);
    // Uploads keep the reference's 200 characters: only the server makes longer names, by copying.
    const upload = await fx.call('POST', `/v1/jobs/${child.pk}/outputs/${'u'.repeat(201)}/BLOB`, { body: 'x', headers: { 'content-disposition': 'attachment; filename=x' } });
    expect(upload.status).toBe(400);
    expect(upload.body.detail).toMatch(/^Bad output name "u+": it is longer than 200 characters$/);
  });
});

describe('GET /v1/jobs/{pk}/workflow', () => {
  it('answers the graph with each node’s job (null until created) and progress; 404 for a job that is no workflow', async () => {
    const fx = await startWithFixtures();
    const template = await importPipeline(fx);
    const parent = await createPipelineJob(fx, template);
    const { train } = await childrenOf(fx, parent.pk);
    await runChild(fx, fx.node(), train.pk, { progress: [0.4], finish: false });
    const view = await fx.call('GET', `/v1/jobs/${parent.pk}/workflow`);
    expect(view.status, view.text).toBe(200);
    expect(view.body.job.pk).toBe(parent.pk);
    expect(view.body.progress).toBeCloseTo(0.2);
    expect(view.body.nodes.map((n: any) => [n.name, n.depends_on, n.job?.pk ?? null, n.progress])).toEqual([
      ['train', [], train.pk, 0.4],
      ['predict', ['train'], null, 0],
    ]);
    expect(view.body.dependencies).toHaveLength(1);
    const plain = await fx.call('GET', `/v1/jobs/${train.pk}/workflow`);
    expect(plain.status).toBe(404);
    expect(plain.body.detail).toMatch(/not a workflow.*child of the workflow job/);
  });
});
