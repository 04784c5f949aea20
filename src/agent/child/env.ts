/**
 * The environment of the child's contract (DESIGN §4, documented in the README):
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
