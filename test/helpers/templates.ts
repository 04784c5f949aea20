/**
 * Templates for tests, in the reference's import format: the one builder of a `Run` template for the
 * agent's executors, and its `ufdl_agent.Shell` form.
 */

/** A `Run` template for `executor` with these parameters (and `specific` keys, e.g. `inputs`). */
export function runTemplate(
  name: string,
  executor: string,
  parameters: Record<string, unknown>,
  specific: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name,
    version: 1,
    description: `test template ${name}`,
    scope: 'public',
    licence: 'Apache 2.0',
    specific: { job_type: 'Run', executor_class: executor, required_packages: '', parameters, ...specific },
  };
}

/** A `Run` template for `ufdl_agent.Shell` with `script` as its body, and `extra` parameters. */
export function shellTemplate(name: string, script: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return runTemplate(name, 'ufdl_agent.Shell', { body: { types: ['str'], default: script, const: true, help: 'the script' }, ...extra });
}
