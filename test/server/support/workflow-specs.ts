/**
 * Workflow (meta-template) specs in the reference's import format, and a node that drives a child job
 * through its lifecycle over the API — the server-side workflow tests need no agent.
 */
import { expect } from 'vitest';
import type { Fixtures } from '../../helpers/fixtures.js';
import { importTemplate } from '../../helpers/agent.js';
import { runSpec } from './template-specs.js';

/** A `Run` template that produces `model.bin` (BLOB) and `report` (JSON) from an int `seed`. */
export function producerSpec(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return runSpec(
    { name: 'producer', description: 'trains', ...overrides },
    {
      inputs: [{ name: 'seed', types: ['int'], help: 'Random seed' }],
      outputs: { 'model.bin': 'BLOB', report: 'JSON' },
      parameters: { epochs: { types: ['int'], default: 5, help: 'Epochs.' }, body: SCRIPT },
    },
  );
}

/**
 * A `ufdl_agent.Shell` template named `scripted` whose script (`body`, placing `${label}`) and outputs
 * are left to whoever runs it (not const): what a workflow's overrides may replace.
 */
export function scriptedSpec(): Record<string, unknown> {
  return {
    ...producerSpec({ name: 'scripted' }),
    specific: {
      job_type: 'Run',
      executor_class: 'ufdl_agent.Shell',
      required_packages: '',
      parameters: {
        label: { types: ['str'], default: 'x', help: '' },
        body: { types: ['str'], default: 'echo "${label}"', help: 'The script.' },
        outputs: { types: ['JSON'], default: { 'out.txt': 'BLOB' }, help: '' },
      },
    },
  };
}

/** A `Run` template that takes a `model` (JobOutput<BLOB>) and a `label`. */
export function consumerSpec(overrides: Record<string, unknown> = {}, inputs?: unknown[]): Record<string, unknown> {
  return runSpec(
    { name: 'consumer', description: 'predicts', ...overrides },
    {
      inputs: inputs ?? [
        { name: 'model', types: ['JobOutput<BLOB>'], help: 'The model' },
        { name: 'label', types: ['str'], help: 'A label' },
      ],
      outputs: { 'predictions.csv': 'BLOB' },
      parameters: { items: { types: ['int'], default: 10, help: 'Items.' }, body: SCRIPT },
    },
  );
}

const SCRIPT = { types: ['str'], default: 'true', const: true, help: 'The script.' };

/** producer → consumer, `model.bin` wired into `model`; `epochs` overridden to 3. */
export function pipelineSpec(overrides: Record<string, unknown> = {}, specific: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'pipeline',
    version: 1,
    description: 'train then predict',
    scope: 'public',
    licence: 'Apache 2.0',
    specific: {
      nodes: {
        train: { name: 'producer', parameter_default_overrides: { epochs: { default: 3 } } },
        predict: { name: 'consumer' },
      },
      dependencies: [{ from_node: 'train', from_output: 'model.bin', to_node: 'predict', to_input: 'model' }],
      ...specific,
    },
    ...overrides,
  };
}

export function importSpec(fx: Fixtures, spec: Record<string, unknown>): Promise<number> {
  return importTemplate(fx.server, spec);
}

/** Import producer, consumer and the pipeline; returns the pipeline's pk. */
/**
 * Imports a producer, a two-input consumer and `diamond`: producers `a` and `b` without dependencies,
 * and `join`, which needs an output of each. Returns the diamond's pk.
 */
export async function importDiamond(fx: Fixtures): Promise<number> {
  await importSpec(fx, producerSpec());
  await importSpec(fx, consumerSpec({}, [{ name: 'model', types: ['JobOutput<BLOB>'] }, { name: 'other', types: ['JobOutput<JSON>'] }]));
  return importSpec(fx, pipelineSpec({ name: 'diamond' }, {
    nodes: { a: { name: 'producer' }, b: { name: 'producer' }, join: { name: 'consumer' } },
    dependencies: [
      { from_node: 'a', from_output: 'model.bin', to_node: 'join', to_input: 'model' },
      { from_node: 'b', from_output: 'report', to_node: 'join', to_input: 'other' },
    ],
  }));
}

export async function importPipeline(fx: Fixtures): Promise<number> {
  await importSpec(fx, producerSpec());
  await importSpec(fx, consumerSpec());
  return importSpec(fx, pipelineSpec());
}

/** The values a pipeline job needs. */
export const PIPELINE_VALUES = {
  input_values: { 'train:seed': { value: 7, type: 'int' }, 'predict:label': { value: 'cats', type: 'str' } },
  parameter_values: { 'predict:items': { value: 4, type: 'int' } },
};

export async function createPipelineJob(fx: Fixtures, template: number, body: Record<string, unknown> = PIPELINE_VALUES): Promise<any> {
  const res = await fx.call('POST', `/v1/job-templates/${template}/create-job`, { json: body });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

export async function getJob(fx: Fixtures, pk: number): Promise<any> {
  const res = await fx.call('GET', `/v1/jobs/${pk}`);
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** The children of a parent job, by node name (read from the API with the reference's `parent` filter). */
export async function childrenOf(fx: Fixtures, parent: number): Promise<Record<string, any>> {
  const res = await fx.call('POST', '/v1/jobs/list', { json: { expressions: [{ type: 'exact', field: 'parent', value: parent }] } });
  expect(res.status, res.text).toBe(200);
  // The reference's own way to learn a child's node: its description, `child job '<node>' of …`.
  return Object.fromEntries((res.body as any[]).map((job) => [/^child job '([^']+)'/.exec(job.description)![1], job]));
}

const UPLOAD_HEADERS = { 'content-disposition': 'attachment; filename=out', 'content-type': 'application/data' };

/**
 * As `node`: acquire and start the job, report `progress`, upload `outputs` (name → type), then
 * finish (with `error` if given). Each call must answer 200.
 */
export async function runChild(
  fx: Fixtures,
  node: number,
  job: number,
  options: { progress?: number[]; outputs?: Record<string, string>; error?: string; finish?: boolean } = {},
): Promise<void> {
  await fx.startAs(node, job);
  for (const value of options.progress ?? []) {
    const res = await fx.call('POST', `/v1/jobs/${job}/progress/${value}`, { node, json: {} });
    expect(res.status, res.text).toBe(200);
  }
  for (const [name, type] of Object.entries(options.outputs ?? {})) {
    const res = await fx.call('POST', `/v1/jobs/${job}/outputs/${encodeURIComponent(name)}/${encodeURIComponent(type)}`, {
      node,
      body: `${name} of job ${job}`,
      headers: UPLOAD_HEADERS,
    });
    expect(res.status, res.text).toBe(200);
  }
  if (options.finish === false) return;
  const res = await fx.call('POST', `/v1/jobs/${job}/finish`, {
    node,
    json: { success: options.error === undefined, send_notification: 'email', ...(options.error === undefined ? {} : { error: options.error }) },
  });
  expect(res.status, res.text).toBe(200);
}
