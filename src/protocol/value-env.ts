/**
 * The environment variables that carry a job's values to its child process: every parameter as
 * `UFDL_PARAM_<name>` and every input as `UFDL_INPUT_<name>`, each character of the name that a shell
 * variable cannot hold (`-`, `.`) spelled `_`. A `ufdl_agent.Shell` script's `${name}` is rewritten to
 * a reference to one of these; any program can read them.
 *
 * Two names of one template must not map to one variable (`num-classes` and `num_classes`), nor to a
 * variable of the job contract (an input named `DIR` would be `UFDL_INPUT_DIR`); the server refuses
 * such a template at import and the agent such a job.
 */

export const PARAMETER_ENV_PREFIX = 'UFDL_PARAM_';
export const INPUT_ENV_PREFIX = 'UFDL_INPUT_';

/** The contract's own variables, which no value may shadow. */
export const CONTRACT_ENV_NAMES: readonly string[] = ['UFDL_JOB_PK', 'UFDL_JOB_DIR', 'UFDL_INPUT_DIR', 'UFDL_OUTPUT_DIR', 'UFDL_JOB_JSON', 'CUDA_VISIBLE_DEVICES'];

/** The variable of parameter `name`. */
export function parameterEnvName(name: string): string {
  return PARAMETER_ENV_PREFIX + name.replace(/[^A-Za-z0-9_]/g, '_');
}

/** The variable of input `name`. */
export function inputEnvName(name: string): string {
  return INPUT_ENV_PREFIX + name.replace(/[^A-Za-z0-9_]/g, '_');
}

/**
 * Why the values of these parameters and inputs cannot all have variables of their own, or
 * `undefined` when they can.
 */
export function valueEnvClash(parameters: Iterable<string>, inputs: Iterable<string>): string | undefined {
  const owners = new Map<string, string>(CONTRACT_ENV_NAMES.map((name) => [name, 'the job contract']));
  const claims: [string, string][] = [
    ...[...parameters].map((name): [string, string] => [parameterEnvName(name), `parameter '${name}'`]),
    ...[...inputs].map((name): [string, string] => [inputEnvName(name), `input '${name}'`]),
  ];
  for (const [variable, owner] of claims) {
    const other = owners.get(variable);
    if (other !== undefined) return `${owner} and ${other} would both be the environment variable ${variable}; rename one`;
    owners.set(variable, owner);
  }
  return undefined;
}

/** The string form of a value: strings as they are, `null` as empty, JSON for objects and arrays. */
export function stringifyValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}
