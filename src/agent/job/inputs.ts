/**
 * Inputs that live on the server (`JobOutput<…>`: an output of an earlier job, by pk) are downloaded
 * into the job's input directory before start, each under its input's name, so
 * that a predict job finds the model its train job produced.
 */
import { join } from 'node:path';
import PQueue from 'p-queue';
import type { JobJson } from '../../protocol/wire.js';
import type { JobDir } from '../child/job-dir.js';
import type { NodeApi } from '../ports.js';

/** Whether an input's type string is a `JobOutput` (with or without type arguments). */
export function isJobOutputType(type: string): boolean {
  return /^\s*JobOutput\s*(<|$)/.test(type);
}

/** Inputs downloaded at once: enough to overlap the server's latency, few enough not to crowd its disk. */
export const INPUT_DOWNLOADS_AT_ONCE = 2;

/**
 * Download every `JobOutput<…>` input, a few at a time; returns the local path of each by input name.
 * Every input is checked before any download begins; when one download fails, the others are aborted.
 */
export async function downloadInputs(
  api: Pick<NodeApi, 'downloadJobOutputByPk'>,
  job: JobJson,
  dir: JobDir,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  const planned: { name: string; outputPk: number; dest: string }[] = [];
  for (const [name, typed] of Object.entries(job.input_values)) {
    if (!isJobOutputType(typed.type)) continue;
    const raw = typeof typed.value === 'object' && typed.value !== null ? (typed.value as { pk?: unknown }).pk : typed.value;
    const outputPk = Number(raw);
    if (!Number.isSafeInteger(outputPk) || outputPk <= 0) throw new Error(`Input '${name}' is not a job-output pk: ${JSON.stringify(typed.value)}`);
    // The input name becomes a file name: never a path.
    if (/[/\\\0]|^\.\.?$/.test(name) || name === '') throw new Error(`Input name '${name}' cannot be a file name`);
    planned.push({ name, outputPk, dest: join(dir.inputDir, name) });
  }
  const failed = new AbortController();
  const aborted = signal ? AbortSignal.any([signal, failed.signal]) : failed.signal;
  const queue = new PQueue({ concurrency: INPUT_DOWNLOADS_AT_ONCE });
  let firstError: unknown;
  const download = async (p: (typeof planned)[number]) => {
    try {
      await api.downloadJobOutputByPk(p.outputPk, p.dest, { signal: aborted });
    } catch (err) {
      // At once, before the queue starts the next one: the job cannot start without every input.
      firstError ??= err;
      failed.abort();
      queue.clear();
      throw err;
    }
  };
  try {
    await Promise.all(planned.map((p) => queue.add(() => download(p), { signal: aborted })));
  } catch (err) {
    await queue.onIdle();
    // The download that failed says why, not the ones aborted because of it.
    throw firstError ?? err;
  }
  return Object.fromEntries(planned.map((p) => [p.name, p.dest]));
}
