/**
 * A start that reached the server whose answer was lost, while the server could not be re-read for a
 * while (it was restarting, say). The start is sent once; whether it landed is then learnt only by
 * re-reading the job, and until the server answers that re-read nobody knows. Guessing "not started"
 * releases a job the server shows started by this node: the release is refused (a started job must be
 * finished first), the job stays STARTED with no child and the node's `current_job` pointing at it,
 * and every later start of that node is refused as busy, for as long as the agent runs.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createJob, getJob, importTemplate, outcomeOf, readRuns, shellTemplate, startTestAgent } from '../../helpers/agent.js';
import { answerJson, httpProxy } from '../../helpers/http-proxy.js';
import { startTestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

/**
 * A proxy to `target` that forwards the first start but cuts the connection instead of passing its
 * answer on (the start lands, its answer is lost), then answers `failure` (503 unless told) to the
 * next `readFailures` re-reads of that job (the server never sees them); everything else passes.
 */
async function answerLosingProxy(target: string, readFailures: number, failure: { status: number; detail: string } = { status: 503, detail: 'unavailable (test)' }) {
  const counts = { starts: 0, failedReads: 0 };
  let startedPk: string | undefined;
  const url = await httpProxy(target, {
    answer: (req, res) => {
      const start = req.method === 'POST' && /^\/v1\/jobs\/(\d+)\/start$/.exec(req.url!);
      if (start && ++counts.starts === 1) startedPk = start[1];
      if (req.method !== 'GET' || startedPk === undefined || req.url !== `/v1/jobs/${startedPk}` || counts.failedReads >= readFailures) return false;
      counts.failedReads++;
      return answerJson(res, failure.status, failure.detail);
    },
    answered: (req, upstream, res) => {
      if (!(req.method === 'POST' && req.url === `/v1/jobs/${startedPk}/start` && counts.starts === 1)) return false;
      // The server has committed the start; the agent never hears of it.
      upstream.resume();
      res.socket?.destroy();
      return true;
    },
  });
  return { url, counts };
}

describe('a start whose answer was lost', () => {
  // A server away for a while (503), or a proxy in front of it that throttles (429) or gave up
  // waiting (408): none of them says anything about the job, so each is asked again.
  for (const failure of [
    { status: 503, detail: 'unavailable (test)' },
    { status: 429, detail: 'Too many requests (test)' },
    { status: 408, detail: 'Request Timeout (test)' },
  ]) {
    it(`waits until the server can say whether it landed (re-reads answered ${failure.status}), then runs the job once, not release a started job`, async () => {
      const server = await startTestServer();
      const dir = await tempDir('ufdl-start-lost-');
      const runs = join(dir, 'runs');
      const template = await importTemplate(server, shellTemplate('start-lost', `echo run >> '${runs}'\necho ran > "$UFDL_OUTPUT_DIR/ran.txt"\n`));
      // More failed re-reads than one re-read's own retries cover: the server is away for a while.
      const proxy = await answerLosingProxy(server.url, 8, failure);
      const { agent } = await startTestAgent({ url: proxy.url });
      const pk = await createJob(server, template);

      const outcome = await outcomeOf(agent, pk);

      const job = await getJob(server, pk);
      expect(proxy.counts.starts).toBe(1);
      expect(proxy.counts.failedReads).toBe(8);
      expect({ outcome, error: job.error_reason, ended: job.end_time !== null }).toEqual({ outcome: 'success', error: null, ended: true });
      expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'ran.txt']);
      expect(await readRuns(runs)).toEqual(['run']);
    }, 90_000);
  }
});
