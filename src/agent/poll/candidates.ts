/**
 * Candidate evaluation for the poll loop: cheap checks first, per-candidate failures isolated. Templates are fetched once and cached by pk (a template never changes under its
 * pk: import makes a new one); the executor allow-list and `canRun` decide from the template alone.
 */
import { isClientError } from '../../client/errors.js';
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import type { TemplateRefusal } from '../executors/errors.js';
import type { Evaluation } from './loop.js';
import type { ExecutorPort } from '../ports.js';

export interface TemplateSource {
  getTemplate(pk: number, opts?: { signal?: AbortSignal }): Promise<TemplateJson>;
}

export class TemplateCache {
  readonly #entries = new Map<number, Promise<TemplateJson>>();

  /** The template, fetched at most once while it succeeds; a failed fetch is forgotten. */
  get(source: TemplateSource, pk: number, signal?: AbortSignal): Promise<TemplateJson> {
    let entry = this.#entries.get(pk);
    if (!entry) {
      entry = source.getTemplate(pk, signal ? { signal } : {});
      this.#entries.set(pk, entry);
      entry.catch(() => this.#entries.delete(pk));
    }
    return entry;
  }

  /** The template if it was already fetched (recovery, status). */
  peek(pk: number): Promise<TemplateJson> | undefined {
    return this.#entries.get(pk);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/**
 * Whether this node can run `job`. A job's own fault (its template is gone, names an executor this
 * node does not run, or `canRun` says no) is a negative evaluation; a server error while fetching the
 * template is thrown, so the loop backs off instead of skipping a good job.
 */
export async function evaluateCandidate(
  job: JobJson,
  source: TemplateSource,
  cache: TemplateCache,
  executors: ExecutorPort,
  signal?: AbortSignal,
): Promise<Evaluation & { template?: TemplateJson }> {
  let template: TemplateJson;
  try {
    template = await cache.get(source, job.template.pk, signal);
  } catch (err) {
    if (isClientError(err, 'not-found') || isClientError(err, 'forbidden') || isClientError(err, 'bad-request')) {
      return { ok: false, reason: `its template ${job.template.pk} cannot be read: ${err.message}` };
    }
    throw err;
  }
  let why: TemplateRefusal | undefined;
  try {
    why = executors.canRun(template);
  } catch (err) {
    // A template of a shape no executor's check expects (a broken server): the job's own fault, so
    // it is skipped with the reason; thrown, it would fail every poll and cost the node the queue.
    return { ok: false, reason: `its template '${String(template.name)}' (${job.template.pk}) cannot be checked: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (why !== undefined) return { ok: false, reason: why.reason, code: why.code };
  return { ok: true, template };
}
