/**
 * Template specs in the reference's import format, for the template and create-job tests.
 */

/** A `Train` template shaped like the reference's image-classification ones. */
export function trainSpec(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'ic-train',
    version: 1,
    description: 'Trains an image classifier',
    scope: 'public',
    domain: 'ic',
    licence: 'Apache 2.0',
    specific: {
      job_type: "Train<Domain<'Image Classification'>, Framework<'dogs_dummy', '1'>>",
      executor_class: 'ufdl_agent.Command',
      required_packages: '',
      parameters: {
        factor: { types: ['int'], default: 1000, help: 'The accuracy factor.' },
        delay: { types: ['float'], default: 0.0, help: 'Sleep between images.' },
        options: { types: ['Array<str>', 'str'], default: ['a', 'b'], help: 'Extra options.' },
        body: { types: ['Array<str>'], default: ['train', '${factor}'], const: true, help: 'The argv.' },
        seed: { types: ['int'], help: 'Random seed (required).' },
      },
    },
    ...overrides,
  };
}

/** A `Run` template with its own inputs and outputs. */
export function runSpec(overrides: Record<string, unknown> = {}, specific: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'run-job',
    version: 1,
    description: 'A general job',
    scope: 'public',
    licence: 'Apache 2.0',
    specific: {
      job_type: 'Run',
      executor_class: 'ufdl_agent.Shell',
      required_packages: '',
      inputs: [
        { name: 'count', types: ['int'], help: 'How many' },
        { name: 'model', types: ['JobOutput<BLOB>'] },
      ],
      outputs: { 'result.csv': 'BLOB', summary: 'JSON' },
      parameters: {
        label: { types: ['str'], default: 'x', help: 'A label.' },
        body: { types: ['str'], default: 'echo ${label}', const: true, help: 'The script.' },
      },
      ...specific,
    },
    ...overrides,
  };
}

export const IC_DATASET = "PK<Dataset<Domain<'Image Classification'>>>";
