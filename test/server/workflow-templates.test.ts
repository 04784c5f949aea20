/**
 * Importing meta-templates (workflows) in the reference's format (ufdl-json-messages
 * `core/jobs/meta/`: a DependencyGraph of `nodes` and `dependencies`), what a meta-template looks like
 * on the template routes, and every import mistake as a 400 naming it.
 */
import { describe, expect, it } from 'vitest';
import { pollFilter } from '../../src/protocol/filter.js';
import { startWithFixtures } from '../helpers/fixtures.js';
import { consumerSpec, importPipeline, importSpec, pipelineSpec, producerSpec, scriptedSpec } from './support/workflow-specs.js';

describe('importing a meta-template', () => {
  it('answers the template with the common keys, the inherited parameters and inputs, and the resolved graph', async () => {
    const fx = await startWithFixtures();
    const producer = await importSpec(fx, producerSpec());
    const consumer = await importSpec(fx, consumerSpec());
    const res = await fx.call('POST', '/v1/job-templates/import', { json: pipelineSpec() });
    expect(res.status, res.text).toBe(200);
    const body = res.body;
    // The reference's meta-template JSON has the common keys and none of the workable ones.
    expect(Object.keys(body)).toEqual([
      'pk', 'name', 'version', 'description', 'scope', 'domain', 'licence', 'creator', 'creation_time', 'deletion_time',
      'parameters', 'inputs', 'graph',
    ]);
    expect(body).toMatchObject({ name: 'pipeline', version: 1, licence: 2 });
    expect(body.parameters['train:epochs']).toEqual({ types: ['int'], help: 'Epochs.', default: 3, default_type: 'int', const: false });
    expect(body.parameters['train:body']).toMatchObject({ default: 'true', const: true });
    expect(body.parameters['predict:items']).toMatchObject({ default: 10, const: false });
    // The wired input (predict:model) is fed by the graph, not by the user.
    expect(body.inputs).toEqual([
      { name: 'train:seed', types: ['int'], help: 'Random seed' },
      { name: 'predict:label', types: ['str'], help: 'A label' },
    ]);
    expect(body.graph).toEqual({
      nodes: {
        train: { template: { pk: producer, name: 'producer', version: 1 }, parameter_default_overrides: { epochs: { default: 3, default_type: 'int' } } },
        predict: { template: { pk: consumer, name: 'consumer', version: 1 } },
      },
      dependencies: [{ from_node: 'train', from_output: 'model.bin', from_output_type: 'BLOB', to_node: 'predict', to_input: 'model' }],
    });
  });

  it('uses the latest active version of a child template when the node names none, the given one otherwise', async () => {
    const fx = await startWithFixtures();
    await importSpec(fx, producerSpec());
    const v2 = await importSpec(fx, producerSpec({ version: 2 }));
    await importSpec(fx, consumerSpec());
    const latest = await fx.call('POST', '/v1/job-templates/import', { json: pipelineSpec() });
    expect(latest.body.graph.nodes.train.template).toEqual({ pk: v2, name: 'producer', version: 2 });
    const pinned = await fx.call('POST', '/v1/job-templates/import', {
      json: pipelineSpec({ name: 'pinned' }, { nodes: { train: { name: 'producer', version: 1 }, predict: { name: 'consumer' } } }),
    });
    expect(pinned.body.graph.nodes.train.template.version).toBe(1);
  });

  it('exports the graph in the import format, which imports again to the same graph', async () => {
    const fx = await startWithFixtures();
    const pk = await importPipeline(fx);
    const exported = await fx.call('GET', `/v1/job-templates/${pk}/export`);
    expect(exported.status).toBe(200);
    expect(exported.body.specific).toEqual({
      nodes: {
        train: { name: 'producer', version: 1, parameter_default_overrides: { epochs: { default: 3, default_type: 'int' } } },
        predict: { name: 'consumer', version: 1 },
      },
      dependencies: [{ from_node: 'train', from_output: 'model.bin', to_node: 'predict', to_input: 'model' }],
    });
    const again = await fx.call('POST', '/v1/job-templates/import', { json: { ...exported.body, version: 2 } });
    expect(again.status, again.text).toBe(200);
    const first = await fx.call('GET', `/v1/job-templates/${pk}`);
    expect(again.body.graph).toEqual(first.body.graph);
    expect(again.body.parameters).toEqual(first.body.parameters);
  });

  it('serves the workflow on the template routes: parameters, inputs and outputs by node; no type parameters; never a match for a contract', async () => {
    const fx = await startWithFixtures();
    const pk = await importPipeline(fx);
    const outputs = await fx.call('GET', `/v1/job-templates/${pk}/get-outputs`);
    expect(outputs.body).toEqual({ 'train:model.bin': 'BLOB', 'train:report': 'JSON', 'predict:predictions.csv': 'BLOB' });
    const inputs = await fx.call('GET', `/v1/job-templates/${pk}/get-inputs`);
    expect(Object.keys(inputs.body)).toEqual(['train:seed', 'predict:label']);
    const parameters = await fx.call('GET', `/v1/job-templates/${pk}/get-all-parameters`);
    expect(parameters.body['train:epochs'].default).toMatchObject({ value: 3, type: 'int', const: false });
    // The reference answers 500 (BadModelType) here.
    const types = await fx.call('GET', `/v1/job-templates/${pk}/get-types`);
    expect(types.status).toBe(400);
    expect(types.body.detail).toMatch(/meta-template .*no contract/);
    const matching = await fx.call('GET', '/v1/job-templates/get-all-matching-templates/Train');
    expect(matching.status).toBe(200);
    expect(matching.body).toEqual([]);
  });

  it('tells workable templates from meta-templates in list filters, as the reference’s sub-model relations do', async () => {
    const fx = await startWithFixtures();
    const pk = await importPipeline(fx);
    const workable = await fx.call('POST', '/v1/job-templates/list', { json: { expressions: [{ type: 'isnull', field: 'workabletemplate', invert: true }] } });
    expect(workable.body.map((t: any) => t.name)).toEqual(['producer', 'consumer']);
    const meta = await fx.call('POST', '/v1/job-templates/list', { json: { expressions: [{ type: 'isnull', field: 'metatemplate', invert: true }] } });
    expect(meta.body.map((t: any) => t.pk)).toEqual([pk]);
    // The reference worker's poll filter never lists a workflow's parent.
    await fx.call('POST', `/v1/job-templates/${pk}/create-job`, {
      json: { input_values: { 'train:seed': { value: 1, type: 'int' }, 'predict:label': { value: 'x', type: 'str' } } },
    });
    const queue = await fx.call('POST', '/v1/jobs/list', { json: pollFilter() });
    expect(queue.body.map((j: any) => j.template.name)).toEqual(['producer']);
  });

  it('keeps a template a workflow runs from being hard-deleted (400 UFDL_ERR_TEMPLATE_IN_USE), so the workflow stays usable', async () => {
    const fx = await startWithFixtures();
    const pipeline = await importPipeline(fx);
    const templates = (await fx.call('POST', '/v1/job-templates/list', { json: {} })).body as { pk: number; name: string }[];
    const producer = templates.find((t) => t.name === 'producer')!.pk;
    // No job uses the producer yet: only the workflow's graph refers to it.
    const hard = await fx.call('DELETE', `/v1/job-templates/${producer}/hard`);
    expect(hard.status, hard.text).toBe(400);
    expect(hard.body.detail).toMatch(new RegExp(`workflow template ${pipeline} `));
    // Soft-deleted, the workflow refers to it all the same (it may be reinstated).
    expect((await fx.call('DELETE', `/v1/job-templates/${pipeline}`)).status).toBe(204);
    expect((await fx.call('DELETE', `/v1/job-templates/${producer}/hard`)).status).toBe(400);
    expect((await fx.call('DELETE', `/v1/job-templates/${pipeline}/reinstate`)).status).toBe(200);
    const alice = await fx.user();
    const created = await fx.call('POST', `/v1/job-templates/${pipeline}/create-job`, {
      as: alice,
      json: { input_values: { 'train:seed': { value: 1, type: 'int' }, 'predict:label': { value: 'x', type: 'str' } } },
    });
    expect(created.status, created.text).toBe(200);
    // Once the workflow is gone for good (with its job), the template may go too.
    expect((await fx.call('DELETE', `/v1/jobs/${created.body.pk}/hard`)).status).toBe(200);
    expect((await fx.call('DELETE', `/v1/job-templates/${pipeline}/hard`)).status).toBe(200);
  });
});

describe('import mistakes', () => {
  const cases: Array<[what: string, spec: Record<string, unknown>, detail: RegExp]> = [
    ['no nodes', pipelineSpec({}, { nodes: {}, dependencies: [] }), /specific\.nodes: a workflow needs at least one node/],
    ['a node name with a colon', pipelineSpec({}, { nodes: { 'a:b': { name: 'producer' } }, dependencies: [] }), /specific\.nodes\.a:b: a node name is .*\(no ':'\)/],
    ['an unknown key in a node', pipelineSpec({}, { nodes: { train: { name: 'producer', extra: 1 } }, dependencies: [] }), /specific\.nodes\.train: Unrecognized key/],
    ['an unknown child template', pipelineSpec({}, { nodes: { train: { name: 'nope' } }, dependencies: [] }), /specific\.nodes\.train: unknown child template: no active template is named 'nope'/],
    ['an unknown version', pipelineSpec({}, { nodes: { train: { name: 'producer', version: 9 } }, dependencies: [] }), /no active template 'producer' has version 9/],
    ['an unknown from_node', pipelineSpec({}, { dependencies: [{ from_node: 'x', from_output: 'model.bin', to_node: 'predict', to_input: 'model' }] }), /dependencies\[0\]\.from_node: unknown node 'x' \(nodes: train, predict\)/],
    ['an unknown to_node', pipelineSpec({}, { dependencies: [{ from_node: 'train', from_output: 'model.bin', to_node: 'x', to_input: 'model' }] }), /dependencies\[0\]\.to_node: unknown node 'x'/],
    ['an output the producer does not declare', pipelineSpec({}, { dependencies: [{ from_node: 'train', from_output: 'weights', to_node: 'predict', to_input: 'model' }] }), /from_output: template 'producer' \(node 'train'\) declares no output 'weights' \(outputs: model\.bin, report\)/],
    ['an input the consumer does not have', pipelineSpec({}, { dependencies: [{ from_node: 'train', from_output: 'model.bin', to_node: 'predict', to_input: 'weights' }] }), /to_input: template 'consumer' \(node 'predict'\) has no input 'weights' \(inputs: model, label\)/],
    [
      'an input wired twice',
      pipelineSpec({}, {
        dependencies: [
          { from_node: 'train', from_output: 'model.bin', to_node: 'predict', to_input: 'model' },
          { from_node: 'train', from_output: 'model.bin', to_node: 'predict', to_input: 'model' },
        ],
      }),
      /dependencies\[1\]\.to_input: input 'model' of node 'predict' is fed by more than one dependency/,
    ],
    ['an output of the wrong type', pipelineSpec({}, { dependencies: [{ from_node: 'train', from_output: 'report', to_node: 'predict', to_input: 'model' }] }), /output 'report' of node 'train' \(JSON\) cannot feed input 'model' of node 'predict', which accepts JobOutput<BLOB>, not JobOutput<JSON>/],
    ['a value input fed by an output', pipelineSpec({}, { dependencies: [{ from_node: 'train', from_output: 'model.bin', to_node: 'predict', to_input: 'label' }] }), /cannot feed input 'label' of node 'predict', which accepts str, not JobOutput<BLOB>/],
    [
      'a cycle',
      pipelineSpec({}, {
        nodes: { a: { name: 'consumer' }, b: { name: 'consumer' }, c: { name: 'producer' } },
        dependencies: [
          { from_node: 'a', from_output: 'predictions.csv', to_node: 'b', to_input: 'model' },
          { from_node: 'b', from_output: 'predictions.csv', to_node: 'a', to_input: 'model' },
        ],
      }),
      /the graph has a cycle through the nodes 'a', 'b'/,
    ],
    ['a node depending on itself', pipelineSpec({}, { nodes: { a: { name: 'consumer' } }, dependencies: [{ from_node: 'a', from_output: 'predictions.csv', to_node: 'a', to_input: 'model' }] }), /node 'a' depends on itself/],
    ['an override of an unknown parameter', pipelineSpec({}, { nodes: { train: { name: 'producer', parameter_default_overrides: { lr: { default: 1 } } } }, dependencies: [] }), /parameter_default_overrides\.lr: template 'producer' has no parameter 'lr' \(parameters: epochs, body\)/],
    ['an override of a const parameter', pipelineSpec({}, { nodes: { train: { name: 'producer', parameter_default_overrides: { body: { default: 'rm -rf /' } } } }, dependencies: [] }), /parameter 'body' of template 'producer' is const; a workflow cannot override it/],
    ['an override whose default does not fit', pipelineSpec({}, { nodes: { train: { name: 'producer', parameter_default_overrides: { epochs: { default: 'many' } } } }, dependencies: [] }), /parameter_default_overrides\.epochs\.default: fits none of the parameter's types \(int\)/],
    ['a const override without a default', pipelineSpec({}, { nodes: { train: { name: 'producer', parameter_default_overrides: { epochs: { const: true } } } }, dependencies: [] }), /Must provide a default value for const parameters/],
    ['an unknown key in specific', pipelineSpec({}, { extra: true }), /specific: Unrecognized key/],
    ['dependencies missing', { ...pipelineSpec(), specific: { nodes: { train: { name: 'producer' } } } }, /specific\.dependencies: /],
  ];

  it('answers 400 "Bad job template: …" naming the problem, and stores nothing', async () => {
    const fx = await startWithFixtures();
    await importSpec(fx, producerSpec());
    await importSpec(fx, consumerSpec());
    for (const [what, spec, detail] of cases) {
      const res = await fx.call('POST', '/v1/job-templates/import', { json: spec });
      expect(res.status, `${what}: ${res.text}`).toBe(400);
      expect(res.body.detail, what).toMatch(/^Bad job template: /);
      expect(res.body.detail, what).toMatch(detail);
    }
    expect((fx.db.prepare('SELECT COUNT(*) AS n FROM templates').get() as { n: number }).n).toBe(2);
  });

  it('answers hostile names (prototype keys) and shapes with a 400, never a 500', async () => {
    const fx = await startWithFixtures();
    await importSpec(fx, producerSpec());
    await importSpec(fx, consumerSpec());
    const dependency = (over: Record<string, string>) => ({ from_node: 'train', from_output: 'model.bin', to_node: 'predict', to_input: 'model', ...over });
    const hostile: Record<string, unknown>[] = [
      pipelineSpec({}, { nodes: JSON.parse('{"__proto__": {"name": "producer"}}'), dependencies: [] }),
      pipelineSpec({}, { nodes: { constructor: { name: 'producer' }, toString: { name: 'consumer' } }, dependencies: [{ from_node: 'constructor', from_output: 'model.bin', to_node: 'toString', to_input: 'model' }] }),
      pipelineSpec({}, { dependencies: [dependency({ from_output: 'constructor' })] }),
      pipelineSpec({}, { dependencies: [dependency({ to_input: 'toString' })] }),
      pipelineSpec({}, { dependencies: [dependency({ from_node: '__proto__' })] }),
      pipelineSpec({}, { nodes: { train: { name: 'producer', parameter_default_overrides: { constructor: { default: 1 } } } }, dependencies: [] }),
      pipelineSpec({}, { nodes: { train: { name: 'producer', parameter_default_overrides: JSON.parse('{"__proto__": {"default": 1}}') } }, dependencies: [] }),
      pipelineSpec({}, { nodes: [], dependencies: {} }),
      pipelineSpec({}, { nodes: { train: 'producer' }, dependencies: [] }),
      pipelineSpec({}, { nodes: { train: { name: 'producer', version: -1 } }, dependencies: [] }),
    ];
    for (const spec of hostile) {
      const res = await fx.call('POST', '/v1/job-templates/import', { json: spec });
      // The one that names real templates under prototype names imports (they are plain node names).
      if (res.status === 200) {
        expect(Object.keys(res.body.graph.nodes)).toEqual(['constructor', 'toString']);
        continue;
      }
      expect(res.status, `${JSON.stringify(spec.specific)}: ${res.text}`).toBe(400);
      // `__proto__` keys are refused by the JSON parser already; everything else by the import.
      expect(res.body.detail).toMatch(/^Bad job template: |__proto__|not valid JSON/);
    }
  });

  it('refuses a workflow whose run would create more than 1,000 jobs, nesting multiplied out, before it costs anything', async () => {
    const fx = await startWithFixtures();
    await importSpec(fx, producerSpec());
    const nodes = (count: number, name: string) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`n${i}`, { name }]));
    // 100 nodes is the limit of one graph, and fine: 101 jobs a run.
    await importSpec(fx, { ...pipelineSpec({ name: 'wide' }), specific: { nodes: nodes(100, 'producer'), dependencies: [] } });
    // 9 of them: 1 + 9 × 101 = 910 jobs.
    await importSpec(fx, { ...pipelineSpec({ name: 'nine' }), specific: { nodes: nodes(9, 'wide'), dependencies: [] } });
    // 10 of them: 1 + 10 × 101 = 1011 jobs from one create-job (100 of them would be 10,101, and a
    // workflow of those a million, every one inserted in one transaction).
    const res = await fx.call('POST', '/v1/job-templates/import', { json: { ...pipelineSpec({ name: 'ten' }), specific: { nodes: nodes(10, 'wide'), dependencies: [] } } });
    expect(res.status, res.text.slice(0, 300)).toBe(400);
    expect(res.body.detail).toMatch(/^Bad job template: specific\.nodes: a run of this workflow would create 1011 jobs .*; at most 1000$/);
    expect((fx.db.prepare("SELECT COUNT(*) AS n FROM templates WHERE name = 'ten'").get() as { n: number }).n).toBe(0);
  });

  it('refuses a workflow that would inherit more than 4 MiB of inputs, parameters and outputs from its nodes', async () => {
    const fx = await startWithFixtures();
    // A template with a thousand parameters: about 70 kB of them.
    const parameters = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`p${i}`, { types: ['int'], default: i, help: 'A parameter.' }]));
    await importSpec(fx, { ...producerSpec({ name: 'big' }), specific: { job_type: 'Run', executor_class: 'ufdl_agent.Shell', required_packages: '', parameters } });
    const nodes = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`n${i}`, { name: 'big' }]));
    await importSpec(fx, { ...pipelineSpec({ name: 'some' }), specific: { nodes: nodes(20), dependencies: [] } });
    // 100 of them would be a template of 7 MB, sent to every user who lists templates.
    const res = await fx.call('POST', '/v1/job-templates/import', { json: { ...pipelineSpec({ name: 'all' }), specific: { nodes: nodes(100), dependencies: [] } } });
    expect(res.status, res.text.slice(0, 300)).toBe(400);
    expect(res.body.detail).toMatch(/^Bad job template: specific\.nodes: the inputs, parameters and outputs this workflow inherits from its nodes take \d+ bytes as JSON; at most 4194304$/);
  });

  it('checks a ufdl_agent template again with a node\'s overrides in place: an overridden script or outputs is refused as its import would refuse it', async () => {
    const fx = await startWithFixtures();
    // The script and the outputs are left to whoever runs the template: not const.
    await importSpec(fx, scriptedSpec());
    const workflow = (name: string, nodes: Record<string, unknown>) => ({ ...pipelineSpec({ name }), specific: { nodes, dependencies: [] } });
    const override = (parameters: Record<string, unknown>) => ({ name: 'scripted', parameter_default_overrides: parameters });
    // A safe script is fine, as it would be in the template itself.
    await importSpec(fx, workflow('safe', { s: override({ body: { default: 'printf %s "${label}"' } }) }));
    const refused: [string, Record<string, unknown>, RegExp][] = [
      ['a label run as code', workflow('eval', { s: override({ body: { default: 'eval "${label}"' } }) }), /^Unsafe job template: specific\.nodes\.s\.parameter_default_overrides \(template 'scripted'\): specific\.parameters\.body: /],
      ['an output no upload can have', workflow('outputs', { s: override({ outputs: { default: { '../x': 'BLOB' } } }) }), /^Bad job template: specific\.nodes\.s\.parameter_default_overrides \(template 'scripted'\): .*"\.\.\/x" contains a path separator/],
    ];
    for (const [what, spec, detail] of refused) {
      const res = await fx.call('POST', '/v1/job-templates/import', { json: spec });
      expect(res.status, `${what}: ${res.text.slice(0, 300)}`).toBe(400);
      expect(res.body.detail, what).toMatch(detail);
    }
    // Through a workflow in a workflow: the outer override of `inner:body` is the script that runs.
    await importSpec(fx, workflow('inner', { s: { name: 'scripted' } }));
    const nested = await fx.call('POST', '/v1/job-templates/import', { json: workflow('outer', { w: { name: 'inner', parameter_default_overrides: { 's:body': { default: 'sh -c "${label}"' } } } }) });
    expect(nested.status, nested.text.slice(0, 300)).toBe(400);
    expect(nested.body.detail).toMatch(/^Unsafe job template: specific\.nodes\.w\.parameter_default_overrides \(template 'scripted'\): /);
  });

  it('refuses workflows nested deeper than four levels', async () => {
    const fx = await startWithFixtures();
    await importSpec(fx, producerSpec());
    let inner = 'producer';
    for (let level = 1; level <= 4; level++) {
      const name = `level${level}`;
      await importSpec(fx, { ...pipelineSpec({ name }), specific: { nodes: { step: { name: inner } }, dependencies: [] } });
      inner = name;
    }
    const res = await fx.call('POST', '/v1/job-templates/import', { json: { ...pipelineSpec({ name: 'level5' }), specific: { nodes: { step: { name: inner } }, dependencies: [] } } });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/template 'level4' is a workflow nested too deep \(at most 4 levels of workflows\)/);
  });
});
