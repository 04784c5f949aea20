import { describe, expect, it } from 'vitest';
import { evaluateCandidate, TemplateCache } from '../../../src/agent/poll/candidates.js';
import { ClientError } from '../../../src/client/errors.js';
import type { JobJson, TemplateJson } from '../../../src/protocol/wire.js';
import { jobJson } from '../../helpers/job-json.js';

/** A candidate of template 3. */
const job = (fields: Partial<JobJson> = {}): JobJson => jobJson({ template: { pk: 3, name: 't', version: 1 }, ...fields });

describe('evaluateCandidate()', () => {
  const template = { pk: 3, executor_class: 'ufdl_agent.Shell' } as TemplateJson;

  it('fetches a template once and caches it by pk', async () => {
    let fetches = 0;
    const source = { getTemplate: async () => (fetches++, template) };
    const cache = new TemplateCache();
    const executors = { canRun: () => undefined, executorFor: () => undefined };
    expect(await evaluateCandidate(job(), source, cache, executors)).toMatchObject({ ok: true });
    expect(await evaluateCandidate(job({ pk: 2 }), source, cache, executors)).toMatchObject({ ok: true });
    expect(fetches).toBe(1);
  });

  it("skips a job whose template names an executor this node does not run", async () => {
    const source = { getTemplate: async () => template };
    const refusal = { code: 'UFDL_ERR_AGENT_EXECUTOR_UNKNOWN', reason: "executor class 'x' is not one this node runs" } as const;
    const executors = { canRun: () => refusal, executorFor: () => undefined };
    expect(await evaluateCandidate(job(), source, new TemplateCache(), executors)).toEqual({ ok: false, ...refusal });
  });

  it('skips a job whose template is gone, but lets a server error through (the loop backs off)', async () => {
    const executors = { canRun: () => undefined, executorFor: () => undefined };
    const gone = { getTemplate: async () => Promise.reject(new ClientError({ kind: 'not-found', method: 'GET', path: '/t', status: 404, detail: 'Not found.' })) };
    expect((await evaluateCandidate(job(), gone, new TemplateCache(), executors)).ok).toBe(false);
    const down = { getTemplate: async () => Promise.reject(new ClientError({ kind: 'network', method: 'GET', path: '/t', detail: 'ECONNREFUSED' })) };
    const cache = new TemplateCache();
    await expect(evaluateCandidate(job(), down, cache, executors)).rejects.toBeInstanceOf(ClientError);
    // A failed fetch is not cached.
    await Promise.resolve();
    expect(cache.size).toBe(0);
  });
});
