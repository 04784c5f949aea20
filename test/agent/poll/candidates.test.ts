import { describe, expect, it } from 'vitest';
import { evaluateCandidate, TemplateCache } from '../../../src/agent/poll/candidates.js';
import { lossOf } from '../../../src/agent/job/cancel-watch.js';
import { ClientError } from '../../../src/client/errors.js';
import type { JobJson, TemplateJson } from '../../../src/protocol/wire.js';

const T = '2024-01-01T00:00:00Z';
function job(fields: Partial<JobJson> = {}): JobJson {
  return {
    pk: 1,
    template: { pk: 3, name: 't', version: 1 },
    parent: null,
    start_time: T,
    end_time: null,
    error_reason: null,
    input_values: {},
    parameter_values: {},
    node: 7,
    outputs: [],
    description: '',
    is_cancelled: false,
    creator: 1,
    creation_time: T,
    deletion_time: null,
    ...fields,
  };
}

describe('lossOf()', () => {
  it('keeps a job started by this node', () => {
    expect(lossOf(job(), 7)).toBeUndefined();
  });
  it('sees a cancel', () => {
    expect(lossOf(job({ error_reason: 'Cancelled', is_cancelled: true }), 7)).toBe('cancelled');
  });
  it('sees an abort (back to CREATED), another node, and a deletion', () => {
    expect(lossOf(job({ start_time: null, node: null }), 7)).toBe('taken-away');
    expect(lossOf(job({ node: 8 }), 7)).toBe('taken-away');
    expect(lossOf(job({ deletion_time: T }), 7)).toBe('taken-away');
  });
});

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
    const executors = { canRun: () => "executor class 'x' is not one this node runs", executorFor: () => undefined };
    expect(await evaluateCandidate(job(), source, new TemplateCache(), executors)).toEqual({ ok: false, reason: "executor class 'x' is not one this node runs" });
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
