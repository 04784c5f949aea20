/**
 * Named crash points of the server, for the tests that prove a step is crash-safe: when the
 * environment variable `UFDL_SERVER_FAIL_POINTS` (a comma-separated list) names a point, the process
 * kills itself with SIGKILL the first time it gets there — no cleanup, no flushing, exactly like
 * `kill -9` or the OOM killer. Otherwise a call costs one environment lookup.
 */
import { writeSync } from 'node:fs';

export const SERVER_FAIL_POINT_DOCS = {
  'workflow:child-finished':
    "Inside the transaction that finishes a workflow's child: the child is written FINISHED and its outputs copied to the parent; the children that depend on it are not yet created, nothing is committed.",
  'workflow:successors-committed':
    "The transaction that finished a workflow's child and created its successors has committed; the node's finish is not yet answered.",
} as const;

export type ServerFailPoint = keyof typeof SERVER_FAIL_POINT_DOCS;

export const SERVER_FAIL_POINTS_ENV = 'UFDL_SERVER_FAIL_POINTS';

/** Die here with SIGKILL when `UFDL_SERVER_FAIL_POINTS` names `name`; a line on stderr says which. */
export function serverFailPoint(name: ServerFailPoint, env: NodeJS.ProcessEnv = process.env): void {
  const value = env[SERVER_FAIL_POINTS_ENV];
  if (value === undefined || value === '') return;
  if (!value.split(',').some((entry) => entry.trim() === name)) return;
  try {
    writeSync(2, `ufdl-agent serve: fail point ${name}: SIGKILL\n`);
  } catch {
    // stderr may be closed; die anyway.
  }
  process.kill(process.pid, 'SIGKILL');
}
