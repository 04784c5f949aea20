/**
 * Inputs that live on the server (`JobOutput<…>`: an output of an earlier job, by pk) are downloaded
 * into the job's input directory before start, each under its input's name, so
 * that a predict job finds the model its train job produced.
 */
import { join } from 'node:path';
import type { JobJson } from '../../protocol/wire.js';
import type { JobDir } from '../child/job-dir.js';
import type { NodeApi } from '../ports.js';

/** Whether an input's type string is a `JobOutput` (with or without type arguments). */
export function isJobOutputType(type: string): boolean {
  return /^\s*JobOutput\s*(<|$)/.test(type);
}

/** Download every `JobOutput<…>` input; returns the local path of each by input name. */
export async function downloadInputs(
  api: Pick<NodeApi, 'downloadJobOutputByPk'>,
  job: JobJson,
  dir: JobDir,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  const paths: Record<string, string> = {};
  for (const [name, typed] of Object.entries(job.input_values)) {
    if (!isJobOutputType(typed.type)) continue;
    const raw = typeof typed.value === 'object' && typed.value !== null ? (typed.value as { pk?: unknown }).pk : typed.value;
    const outputPk = Number(raw);
    if (!Number.isSafeInteger(outputPk) || outputPk <= 0) throw new Error(`Input '${name}' is not a job-output pk: ${JSON.stringify(typed.value)}`);
    // The input name becomes a file name: never a path.
    if (/[/\\\0]|^\.\.?$/.test(name) || name === '') throw new Error(`Input name '${name}' cannot be a file name`);
    const dest = join(dir.inputDir, name);
    await api.downloadJobOutputByPk(outputPk, dest, signal ? { signal } : {});
    paths[name] = dest;
  }
  return paths;
}
