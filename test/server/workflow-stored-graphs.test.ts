/**
 * A workflow whose stored row says what import never would (an older database, a hand edit): a
 * `graph` column that is not JSON or not of a graph's shape, overrides of a node's script or outputs
 * that its template's import would refuse, a workflow's own `inputs` that disagree with its graph.
 * Each is planted in the real database, then met over HTTP: no request is a 500, create-job is a 400
 * naming the template and the fault, a run errors as a run with a broken graph does.
 */
import { describe, expect, it } from 'vitest';
import { until } from '../helpers/agent.js';
import { startWithFixtures, type Fixtures } from '../helpers/fixtures.js';
import { childrenOf, consumerSpec, createPipelineJob, getJob, importPipeline, importSpec, PIPELINE_VALUES, pipelineSpec, producerSpec, runChild, scriptedSpec } from './support/workflow-specs.js';

const UNCHECKED = 'it was stored without this check being made; import it again with the graph corrected';

const jobCount = (fx: Fixtures) => (fx.db.prepare('SELECT COUNT(*) AS n FROM jobs').get() as { n: number }).n;

/** A stored template by name (version 1), as a graph names it. */
function refOf(fx: Fixtures, name: string): { pk: number; name: string; version: number } {
  return { pk: (fx.db.prepare('SELECT pk FROM templates WHERE name = ? AND version = 1').get(name) as { pk: number }).pk, name, version: 1 };
}

/** create-job on `template` with `values`: a 400 with `detail`, and not one job stored. */
async function expectRefused(fx: Fixtures, template: number, detail: string | RegExp, what: string, values: unknown = PIPELINE_VALUES): Promise<void> {
  const before = jobCount(fx);
  const res = await fx.call('POST', `/v1/job-templates/${template}/create-job`, { json: values });
  expect(res.status, `${what}: ${res.text.slice(0, 300)}`).toBe(400);
  if (typeof detail === 'string') expect(res.body.detail, what).toBe(detail);
  else expect(res.body.detail, what).toMatch(detail);
  expect(jobCount(fx), what).toBe(before);
}

/** Stored `graph` columns no import writes, and the problem each is told with. */
function unreadableGraphs(fx: Fixtures): Array<[graph: string, problem: string | RegExp]> {
  const train = { template: refOf(fx, 'producer') };
  const dependency = { from_node: 'train', from_output: 'model.bin', from_output_type: 'BLOB', to_node: 'predict', to_input: 'model' };
  return [
    ['{"nodes": {', 'graph: not JSON (at character 11)'],
    ['', 'graph: not JSON (it ends too early)'],
    // The problem is shown to whoever runs a workflow nesting this one: never the stored text itself.
    ['SECRET-TEXT {"nodes": {}}', 'graph: not JSON (an unexpected character)'],
    ['{"nodes": {}, "dependencies": [] SECRET-TEXT', 'graph: not JSON (at character 33)'],
    ['[]', 'graph: not an object with nodes and dependencies'],
    ['{"nodes": [], "dependencies": []}', 'graph.nodes: not an object of nodes by name'],
    [JSON.stringify({ nodes: { train: { template: 'producer' } }, dependencies: [] }), 'graph.nodes.train.template: not {pk, name, version} of a template (integers and a string)'],
    [JSON.stringify({ nodes: { train: { ...train, parameter_default_overrides: { epochs: { default: 3 } } } }, dependencies: [] }), 'graph.nodes.train.parameter_default_overrides.epochs.default_type: not a string, with a default'],
    [JSON.stringify({ nodes: { train }, dependencies: {} }), 'graph.dependencies: not an array'],
    [JSON.stringify({ nodes: { train }, dependencies: [{ ...dependency, to_input: 7 }] }), 'graph.dependencies[0].to_input: not a string'],
  ];
}

describe('a workflow whose stored graph cannot be read', () => {
  it('is answered without its graph by reads, refused (400) by export, create-job and an import that nests it, never a 500', async () => {
    const fx = await startWithFixtures();
    const pipeline = await importPipeline(fx);
    const outer = await importSpec(fx, { ...pipelineSpec({ name: 'outer' }), specific: { nodes: { w: { name: 'pipeline' } }, dependencies: [] } });
    const nestedValues = { input_values: { 'w:train:seed': { value: 7, type: 'int' }, 'w:predict:label': { value: 'cats', type: 'str' } } };
    for (const [graph, problem] of unreadableGraphs(fx)) {
      fx.db.prepare('UPDATE templates SET graph = ? WHERE pk = ?').run(graph, pipeline);
      const what = graph.slice(0, 80);
      const told = (before: string, after: string) => (typeof problem === 'string' ? `${before}${problem}${after}` : new RegExp(`^${escape(before)}${problem.source.slice(1, -1)}${escape(after)}$`));
      const detail = told(`Workflow template ${pipeline} ('pipeline' v1): its stored graph cannot be read: `, '; import it again with the graph corrected');

      const one = await fx.call('GET', `/v1/job-templates/${pipeline}`);
      expect(one.status, `${what}: ${one.text.slice(0, 300)}`).toBe(200);
      expect(one.body.graph, what).toBeUndefined();
      expectText(one.body.graph_error, detail, what);
      const list = await fx.call('POST', '/v1/job-templates/list', { json: {} });
      expect(list.status, `${what}: ${list.text.slice(0, 300)}`).toBe(200);
      expect((list.body as any[]).map((t) => t.name), what).toEqual(['producer', 'consumer', 'pipeline', 'outer']);

      const exported = await fx.call('GET', `/v1/job-templates/${pipeline}/export`);
      expect(exported.status, `${what}: ${exported.text.slice(0, 300)}`).toBe(400);
      expectText(exported.body.detail, detail, what);

      await expectRefused(fx, pipeline, told(`Workflow template ${pipeline} ('pipeline' v1) cannot run: its stored graph cannot be read: `, `; ${UNCHECKED}`), what);
      await expectRefused(
        fx,
        outer,
        told(`Workflow template ${outer} ('outer' v1) cannot run: nested workflow template ${pipeline} ('pipeline' v1): its stored graph cannot be read: `, `; ${UNCHECKED}`),
        `${what} (nested)`,
        nestedValues,
      );

      const nesting = await fx.call('POST', '/v1/job-templates/import', { json: { ...pipelineSpec({ name: 'again' }), specific: { nodes: { w: { name: 'pipeline' } }, dependencies: [] } } });
      expect(nesting.status, `${what}: ${nesting.text.slice(0, 300)}`).toBe(400);
      expectText(nesting.body.detail, detail, what);
    }
    // Such a graph needs no template: the producer, which only it and no job runs, can be hard-deleted.
    const deleted = await fx.call('DELETE', `/v1/job-templates/${refOf(fx, 'producer').pk}/hard`);
    expect(deleted.status, deleted.text.slice(0, 300)).toBe(200);
  });

  it('errors a run that meets it, as a run with a broken graph does; the job whose end met it finishes; the view still shows the run', async () => {
    const fx = await startWithFixtures();
    const pipeline = await importPipeline(fx);
    const parent = await createPipelineJob(fx, pipeline);
    // Meanwhile (a run create-job let through before), the graph becomes unreadable.
    fx.db.prepare('UPDATE templates SET graph = ? WHERE pk = ?').run('{"nodes": {', pipeline);
    const { train } = await childrenOf(fx, parent.pk);
    await runChild(fx, fx.node(), train.pk, { progress: [0.5], outputs: { 'model.bin': 'BLOB' } });

    expect((await getJob(fx, train.pk)).end_time).not.toBeNull();
    const after = await getJob(fx, parent.pk);
    expect(after.end_time).not.toBeNull();
    expect(after.error_reason).toMatch(
      new RegExp(`^Error creating child-jobs: Workflow template ${pipeline} \\('pipeline' v1\\) cannot run: its stored graph cannot be read: graph: not JSON \\(.+\\); ${escape(UNCHECKED)}$`),
    );
    expect(Object.keys(await childrenOf(fx, parent.pk))).toEqual(['train']);

    const view = await fx.call('GET', `/v1/jobs/${parent.pk}/workflow`);
    expect(view.status, view.text.slice(0, 300)).toBe(200);
    expect(view.body.nodes.map((n: any) => [n.name, n.template.name, n.job.pk, n.progress])).toEqual([['train', 'producer', train.pk, 1]]);
    expect(view.body.dependencies).toEqual([]);
    expect(view.body.graph_error).toMatch(new RegExp(`^Workflow template ${pipeline} \\('pipeline' v1\\): its stored graph cannot be read: graph: not JSON`));
  });
});

describe('a workflow run already waiting when its stored graph became unreadable', () => {
  it('is ended by the sweep of stalled runs, as one waiting on nodes that can never run', async () => {
    const fx = await startWithFixtures({ sweepIntervalSeconds: 0.2 });
    const pipeline = await importPipeline(fx);
    const parent = await createPipelineJob(fx, pipeline);
    fx.db.prepare('UPDATE templates SET graph = ? WHERE pk = ?').run('{"nodes": {}, "dependencies": null}', pipeline);
    // As an earlier version ended the run's only job: without a step after it.
    const { train } = await childrenOf(fx, parent.pk);
    const now = new Date().toISOString();
    fx.db.prepare('UPDATE jobs SET start_time = ?, end_time = ? WHERE pk = ?').run(now, now, train.pk);

    await until(async () => (await getJob(fx, parent.pk)).end_time !== null, 20_000, 'the stuck run to end');
    expect((await getJob(fx, parent.pk)).error_reason).toBe(
      `Error creating child-jobs: Workflow template ${pipeline} ('pipeline' v1) cannot run: its stored graph cannot be read: graph.dependencies: not an array; ${UNCHECKED}`,
    );
  });
});

describe('create-job on a workflow whose stored overrides replace a node’s script or outputs', () => {
  it('refuses (400) what the node template’s import would refuse, as import of the workflow does', async () => {
    const fx = await startWithFixtures();
    // The script and the outputs are left to whoever runs the template: not const.
    await importSpec(fx, scriptedSpec());
    const safe = await importSpec(fx, { ...pipelineSpec({ name: 'safe' }), specific: { nodes: { s: { name: 'scripted' } }, dependencies: [] } });
    const store = (overrides: Record<string, unknown>) =>
      fx.db.prepare('UPDATE templates SET graph = ? WHERE pk = ?').run(JSON.stringify({ nodes: { s: { template: refOf(fx, 'scripted'), parameter_default_overrides: overrides } }, dependencies: [] }), safe);
    const cannotRun = `Workflow template ${safe} \\('safe' v1\\) cannot run: `;
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [
        'a label run as code',
        { body: { default: 'eval "${label}"', default_type: 'str' } },
        new RegExp(`^${cannotRun}unsafe job template: graph\\.nodes\\.s\\.parameter_default_overrides \\(template 'scripted'\\): specific\\.parameters\\.body: .+; ${escape(UNCHECKED)}$`),
      ],
      [
        'an output no upload can have',
        { outputs: { default: { '../x': 'BLOB' }, default_type: 'JSON' } },
        new RegExp(`^${cannotRun}graph\\.nodes\\.s\\.parameter_default_overrides \\(template 'scripted'\\): .*"\\.\\./x" contains a path separator.*; ${escape(UNCHECKED)}$`),
      ],
    ];
    for (const [what, overrides, detail] of cases) {
      store(overrides);
      await expectRefused(fx, safe, detail, what, { input_values: {} });
    }
    // A safe script is fine, as it would be in the template itself.
    store({ body: { default: 'printf %s "${label}"', default_type: 'str' } });
    expect((await fx.call('POST', `/v1/job-templates/${safe}/create-job`, { json: { input_values: {} } })).status).toBe(200);
  });
});

describe('create-job on a workflow whose own stored inputs disagree with its graph', () => {
  it('refuses (400) a node input left unwired and undeclared, an input no node takes or a dependency feeds, a type the node does not accept', async () => {
    const fx = await startWithFixtures();
    const pipeline = await importPipeline(fx);
    const imported = JSON.parse((fx.db.prepare('SELECT inputs FROM templates WHERE pk = ?').get(pipeline) as { inputs: string }).inputs) as { name: string; types: string[] }[];
    expect(imported.map((input) => input.name)).toEqual(['train:seed', 'predict:label']);
    const without = (name: string) => imported.filter((input) => input.name !== name);
    const cases: [string, unknown[], string][] = [
      [
        'a node input left unwired and undeclared',
        without('predict:label'),
        "inputs: input 'label' of node 'predict' (template 'consumer') is fed by no dependency, and the workflow declares no input 'predict:label' to take it",
      ],
      ['an input no node has', [...imported, { name: 'ghost:x', types: ['str'] }], 'inputs.ghost:x: the workflow declares an input that no node of its graph has'],
      ['an input a dependency feeds', [...imported, { name: 'predict:model', types: ['JobOutput<BLOB>'] }], "inputs.predict:model: the workflow declares an input that node 'train' feeds (a dependency of the graph)"],
      [
        'a type the node does not accept',
        [...without('predict:label'), { name: 'predict:label', types: ['int'] }],
        "inputs.predict:label: the workflow takes int, which input 'label' of node 'predict' (template 'consumer') does not accept (it accepts str)",
      ],
    ];
    for (const [what, inputs, problem] of cases) {
      fx.db.prepare('UPDATE templates SET inputs = ? WHERE pk = ?').run(JSON.stringify(inputs), pipeline);
      await expectRefused(fx, pipeline, `Workflow template ${pipeline} ('pipeline' v1) cannot run: ${problem}; ${UNCHECKED}`, what, { input_values: {} });
    }
  });
});

describe('a workflow whose stored inputs, outputs or parameters columns cannot be read', () => {
  /** producer → a nested workflow `inner` (one consumer), wired through the nested workflow's input. */
  async function importNesting(fx: Fixtures): Promise<{ inner: number; outer: number }> {
    await importSpec(fx, producerSpec());
    await importSpec(fx, consumerSpec());
    const inner = await importSpec(fx, { ...pipelineSpec({ name: 'inner' }), specific: { nodes: { predict: { name: 'consumer' } }, dependencies: [] } });
    const outer = await importSpec(fx, {
      ...pipelineSpec({ name: 'outer' }),
      specific: { nodes: { train: { name: 'producer' }, w: { name: 'inner' } }, dependencies: [{ from_node: 'train', from_output: 'model.bin', to_node: 'w', to_input: 'predict:model' }] },
    });
    return { inner, outer };
  }
  const OUTER_VALUES = { input_values: { 'train:seed': { value: 7, type: 'int' }, 'w:predict:label': { value: 'cats', type: 'str' } } };
  const GARBAGE: Array<[column: 'inputs' | 'outputs' | 'parameters', value: string]> = [
    ['inputs', '[{'],
    ['inputs', '{"predict:model": ["JobOutput<BLOB>"]}'],
    ['inputs', '[{"name": "predict:model"}]'],
    ['inputs', '[null]'],
    ['outputs', '["predict:predictions.csv"]'],
    ['parameters', 'null'],
  ];

  it('create-job on a workflow that nests it is a 400 naming the column, never a 500', async () => {
    const fx = await startWithFixtures();
    const { inner, outer } = await importNesting(fx);
    for (const [column, value] of GARBAGE) {
      const before = fx.db.prepare(`SELECT ${column} AS v FROM templates WHERE pk = ?`).get(inner) as { v: string };
      fx.db.prepare(`UPDATE templates SET ${column} = ? WHERE pk = ?`).run(value, inner);
      await expectRefused(fx, outer, new RegExp(`^Workflow template ${outer} \\('outer' v1\\) cannot run: .*template ${inner} \\('inner' v1\\).*${column}.*; ${escape(UNCHECKED)}$`), `${column} = ${value}`, OUTER_VALUES);
      fx.db.prepare(`UPDATE templates SET ${column} = ? WHERE pk = ?`).run(before.v, inner);
    }
  });

  it('errors a run whose nested workflow\'s row became unreadable; the job whose end met it finishes', async () => {
    for (const [column, value] of GARBAGE) {
      const fx = await startWithFixtures();
      const { inner, outer } = await importNesting(fx);
      const parent = await createPipelineJob(fx, outer, OUTER_VALUES);
      fx.db.prepare(`UPDATE templates SET ${column} = ? WHERE pk = ?`).run(value, inner);
      const { train } = await childrenOf(fx, parent.pk);
      // runChild expects each call, the finish included, to answer 200.
      await runChild(fx, fx.node(), train.pk, { outputs: { 'model.bin': 'BLOB' } });
      const after = await getJob(fx, parent.pk);
      expect(after.end_time, `${column} = ${value}`).not.toBeNull();
      expect(after.error_reason, `${column} = ${value}`).toMatch(new RegExp(`^Error creating child-jobs: .*template ${inner} \\('inner' v1\\).*${column}`));
    }
  });

  it('an import of a workflow that runs such a template is a 400 naming the column, never a 500', async () => {
    const fx = await startWithFixtures();
    const { inner } = await importNesting(fx);
    for (const [column, value] of GARBAGE) {
      for (const [pk, name] of [[inner, 'inner'], [refOf(fx, 'consumer').pk, 'consumer']] as const) {
        const before = fx.db.prepare(`SELECT ${column} AS v FROM templates WHERE pk = ?`).get(pk) as { v: string };
        fx.db.prepare(`UPDATE templates SET ${column} = ? WHERE pk = ?`).run(value, pk);
        const res = await fx.call('POST', '/v1/job-templates/import', {
          json: { ...pipelineSpec({ name: `again-${name}` }), specific: { nodes: { train: { name: 'producer' }, w: { name } }, dependencies: [] } },
        });
        expect(res.status, `${name}.${column} = ${value}: ${res.text.slice(0, 300)}`).toBe(400);
        expect(res.body.detail, `${name}.${column} = ${value}`).toMatch(new RegExp(`specific\\.nodes\\.w: template ${pk} \\('${name}' v1\\): its stored ${column} column cannot be read`));
        fx.db.prepare(`UPDATE templates SET ${column} = ? WHERE pk = ?`).run(before.v, pk);
      }
    }
  });

  it('errors a run whose nested workflow runs a template whose stored type names no job type', async () => {
    const fx = await startWithFixtures();
    const { outer } = await importNesting(fx);
    const parent = await createPipelineJob(fx, outer, OUTER_VALUES);
    const consumer = refOf(fx, 'consumer').pk;
    fx.db.prepare('UPDATE templates SET type = ? WHERE pk = ?').run('Run<', consumer);
    const { train } = await childrenOf(fx, parent.pk);
    await runChild(fx, fx.node(), train.pk, { outputs: { 'model.bin': 'BLOB' } });
    const after = await getJob(fx, parent.pk);
    expect(after.end_time).not.toBeNull();
    expect(after.error_reason).toMatch(new RegExp(`^Error creating child-jobs: .*template ${consumer} has an unusable type 'Run<'`));
  });
});

describe('create-job on a workflow whose own stored parameters disagree with its graph', () => {
  it('refuses (400) a const node parameter made settable, a type or a parameter the node does not have, a node parameter left out', async () => {
    const fx = await startWithFixtures();
    const pipeline = await importPipeline(fx);
    const imported = JSON.parse((fx.db.prepare('SELECT parameters FROM templates WHERE pk = ?').get(pipeline) as { parameters: string }).parameters) as Record<string, any>;
    expect(imported['train:body'].const).toBe(true);
    const withParameter = (name: string, value: unknown) => ({ ...imported, [name]: value });
    const without = (name: string) => Object.fromEntries(Object.entries(imported).filter(([key]) => key !== name));
    const cases: [string, Record<string, unknown>, unknown, string][] = [
      [
        "a node's const script made settable",
        withParameter('train:body', { ...imported['train:body'], const: false }),
        { ...PIPELINE_VALUES, parameter_values: { 'train:body': { value: 'echo pwned', type: 'str' } } },
        "parameters.train:body: the workflow lets a run set it, but parameter 'body' of node 'train' (template 'producer') is const",
      ],
      [
        'a type the node does not take',
        withParameter('predict:items', { ...imported['predict:items'], types: ['str'] }),
        { ...PIPELINE_VALUES, parameter_values: { 'predict:items': { value: 'many', type: 'str' } } },
        "parameters.predict:items: the workflow takes str, which parameter 'items' of node 'predict' (template 'consumer') does not accept (it accepts int)",
      ],
      ['a parameter no node has', withParameter('predict:ghost', { types: ['str'], help: '' }), PIPELINE_VALUES, 'parameters.predict:ghost: the workflow declares a parameter that no node of its graph has'],
      [
        'a node parameter left out',
        without('train:epochs'),
        PIPELINE_VALUES,
        "parameters: parameter 'epochs' of node 'train' (template 'producer') is missing; the workflow declares no parameter 'train:epochs'",
      ],
    ];
    for (const [what, parameters, values, problem] of cases) {
      fx.db.prepare('UPDATE templates SET parameters = ? WHERE pk = ?').run(JSON.stringify(parameters), pipeline);
      await expectRefused(fx, pipeline, `Workflow template ${pipeline} ('pipeline' v1) cannot run: ${problem}; ${UNCHECKED}`, what, values);
    }
    // As imported, it runs.
    fx.db.prepare('UPDATE templates SET parameters = ? WHERE pk = ?').run(JSON.stringify(imported), pipeline);
    expect((await fx.call('POST', `/v1/job-templates/${pipeline}/create-job`, { json: PIPELINE_VALUES })).status).toBe(200);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function expectText(actual: unknown, expected: string | RegExp, what: string): void {
  if (typeof expected === 'string') expect(actual, what).toBe(expected);
  else expect(actual, what).toMatch(expected);
}
