/**
 * Prepare and start a job in one step, in the order that keeps failures cheap: prepare (pure; a bad
 * job fails before anything is written), write `job.json`, spawn.
 */
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { jobJsonContent, writeJobJson } from '../child/job-dir.js';
import type { RunningChild } from '../child/running-child.js';
import { spawnJob } from '../child/spawn.js';
import type { Executor, ExecutorContext, PreparedJob } from './types.js';

/** A job that runs. */
export interface LaunchedJob {
  prepared: PreparedJob;
  child: RunningChild;
}

/**
 * Prepare `job` with `executor` and spawn it in `ctx.dir` (which must exist, inputs downloaded).
 * @throws PrepareError when the job cannot be prepared (fail the job; the node is fine)
 * @throws Error when the child cannot be spawned (a node problem, e.g. the work dir vanished)
 */
export async function launchJob(
  executor: Executor,
  job: JobJson,
  template: TemplateJson,
  ctx: ExecutorContext,
): Promise<LaunchedJob> {
  const prepared = executor.prepare(job, template, ctx);
  await writeJobJson(ctx.dir, jobJsonContent(ctx.dir, job, template, prepared.parameters, ctx.inputPaths));
  const child = await spawnJob(prepared.spec);
  return { prepared, child };
}
