/**
 * The environment of the child's contract (documented in README.md, "The job contract"):
 *
 * | variable               | value                                                        |
 * |------------------------|--------------------------------------------------------------|
 * | `UFDL_JOB_PK`          | the job's pk                                                  |
 * | `UFDL_JOB_DIR`         | the job directory (also the child's working directory)        |
 * | `UFDL_INPUT_DIR`       | where downloaded inputs are                                   |
 * | `UFDL_OUTPUT_DIR`      | every regular file left here is uploaded                      |
 * | `UFDL_JOB_JSON`        | a file with the job, template, resolved inputs and parameters |
 * | `CUDA_VISIBLE_DEVICES` | the slot's GPU; the empty string on a CPU slot (hides GPUs)   |
 */
import { inputEnvName, parameterEnvName, stringifyValue } from '../../protocol/value-env.js';
import type { JobDir } from './job-dir.js';

/** The contract variables of one job. */
export interface ContractEnv {
  UFDL_JOB_PK: string;
  UFDL_JOB_DIR: string;
  UFDL_INPUT_DIR: string;
  UFDL_OUTPUT_DIR: string;
  UFDL_JOB_JSON: string;
  CUDA_VISIBLE_DEVICES: string;
}

/**
 * The contract variables for a job run in `dir` on a slot with GPU `gpu` (an index or UUID as
 * `nvidia-smi` reports it), or on a CPU slot when `gpu` is `null`.
 */
export function contractEnv(dir: JobDir, gpu: string | null): ContractEnv {
  return {
    UFDL_JOB_PK: String(dir.pk),
    UFDL_JOB_DIR: dir.root,
    UFDL_INPUT_DIR: dir.inputDir,
    UFDL_OUTPUT_DIR: dir.outputDir,
    UFDL_JOB_JSON: dir.jobJsonPath,
    CUDA_VISIBLE_DEVICES: gpu ?? '',
  };
}

/**
 * Prefixes of the agent's own variables, never passed to a child: they hold the agent's
 * configuration and its secrets (`UFDL_AGENT_PASSWORD`), and a job is code the agent does not trust.
 */
const PRIVATE_PREFIXES = ['UFDL_AGENT_'];

/**
 * The child's full environment: the agent's environment without its private variables, then the
 * contract, then executor-specific additions (which win).
 */
export function childEnv(
  contract: ContractEnv,
  extra: Readonly<Record<string, string>> = {},
  base: Readonly<NodeJS.ProcessEnv> = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) {
    if (value === undefined || PRIVATE_PREFIXES.some((p) => key.startsWith(p))) continue;
    env[key] = value;
  }
  return { ...env, ...contract, ...extra };
}

/** The job's values as environment variables (`UFDL_PARAM_<name>`, `UFDL_INPUT_<name>`). */
export interface ValueEnv {
  env: Record<string, string>;
  /** The variable a `${name}` refers to: the parameter's, else the input's (parameters win, as in expansion). */
  variables: Map<string, string>;
  /** Values left out of the environment, with the reason (they are still in `UFDL_JOB_JSON`). */
  leftOut: Map<string, string>;
}

/**
 * Linux refuses to start a program with one environment string over 128 KiB (MAX_ARG_STRLEN), or with
 * arguments and environment over a quarter of the stack limit together; a value the environment cannot
 * hold stays in job.json only.
 */
const MAX_VALUE_BYTES = 128 * 1024 - 512;
const MAX_TOTAL_BYTES = 1024 * 1024;

/** The environment that carries `parameters` and `inputs` (resolved, by name) to the child. */
export function valueEnv(parameters: Readonly<Record<string, unknown>>, inputs: Readonly<Record<string, unknown>>): ValueEnv {
  const result: ValueEnv = { env: {}, variables: new Map(), leftOut: new Map() };
  let total = 0;
  const add = (name: string, variable: string, value: unknown): void => {
    const text = stringifyValue(value);
    const bytes = Buffer.byteLength(text) + variable.length + 2;
    if (text.includes('\0')) {
      result.leftOut.set(variable, 'it contains a NUL character');
    } else if (bytes > MAX_VALUE_BYTES) {
      result.leftOut.set(variable, `it is ${bytes} bytes, more than the ${MAX_VALUE_BYTES} an environment variable may hold`);
    } else if (total + bytes > MAX_TOTAL_BYTES) {
      result.leftOut.set(variable, `the job's values exceed the ${MAX_TOTAL_BYTES} bytes the environment may hold`);
    } else {
      result.env[variable] = text;
      total += bytes;
    }
  };
  for (const [name, value] of Object.entries(inputs)) {
    add(name, inputEnvName(name), value);
    result.variables.set(name, inputEnvName(name));
  }
  for (const [name, value] of Object.entries(parameters)) {
    add(name, parameterEnvName(name), value);
    result.variables.set(name, parameterEnvName(name));
  }
  return result;
}
