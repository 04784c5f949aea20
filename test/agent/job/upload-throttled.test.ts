/**
 * An output upload that a proxy in front of the server answers 429 (it throttles) or 408 (it gave up
 * waiting for the body): the server never saw it, and the same upload will be taken later. It used to
 * count as a definite refusal: the output was marked failed and the job ended in error.
 */
import { describe, expect, it } from 'vitest';
import { createJob, getJob, importTemplate, outcomeOf, shellTemplate, startTestAgent } from '../../helpers/agent.js';
import { answerJson, httpProxy } from '../../helpers/http-proxy.js';
import { startTestServer } from '../../helpers/server.js';

/** A proxy to `target` that answers `status` to the first `times` output uploads itself. */
async function throttlingProxy(target: string, status: number, times: number) {
  const counts = { refused: 0 };
  const url = await httpProxy(target, {
    answer: (req, res) =>
      req.method === 'POST' && /^\/v1\/jobs\/\d+\/outputs\//.test(req.url!) && counts.refused < times && ++counts.refused > 0
        ? answerJson(res, status, `refused by the proxy (${status})`, { 'retry-after': '0' })
        : false,
  });
  return { url, counts };
}

describe('an output upload a proxy refuses for now', () => {
  // A 429 is waited out however often it comes; a 408 counts against the upload's attempts (a proxy
  // whose time limit is shorter than the upload would answer it every time), so two are let through.
  for (const [status, times] of [
    [429, 3],
    [408, 2],
  ] as const) {
    it(`is sent again after a ${status}, and the job finishes with its outputs`, async () => {
      const server = await startTestServer();
      const template = await importTemplate(server, shellTemplate('throttled', 'echo model > "$UFDL_OUTPUT_DIR/model.bin"\n'));
      const proxy = await throttlingProxy(server.url, status, times);
      const { agent } = await startTestAgent({ url: proxy.url });
      const pk = await createJob(server, template);
      const outcome = await outcomeOf(agent, pk);
      const job = await getJob(server, pk);
      expect(proxy.counts.refused).toBe(times);
      expect({ outcome, error: job.error_reason }).toEqual({ outcome: 'success', error: null });
      expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'model.bin']);
    }, 90_000);
  }

  it('gives up after three 408s in a row: the output fails and the job errors, rather than sending it forever', async () => {
    const server = await startTestServer();
    const template = await importTemplate(server, shellTemplate('timed-out', 'echo model > "$UFDL_OUTPUT_DIR/model.bin"\n'));
    const proxy = await throttlingProxy(server.url, 408, 1_000);
    const { agent } = await startTestAgent({ url: proxy.url });
    const pk = await createJob(server, template);
    const outcome = await outcomeOf(agent, pk);
    const job = await getJob(server, pk);
    expect(outcome).toBe('error');
    expect(job.error_reason).toMatch(/model\.bin/);
    // Three tries of each output (the model, then the log), not a thousand.
    expect(proxy.counts.refused).toBe(6);
  }, 90_000);
});
