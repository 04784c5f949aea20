/**
 * An agent against a broken server (issue 9, item 6): a real embedded server behind a real HTTP proxy
 * that corrupts the answers to `POST /v1/jobs/list`. Malformed entries (a pk that is not a positive
 * integer, `template: null`, not an object at all) are skipped and logged once, and the valid jobs
 * behind them run; an answer that is not a list fails the poll, and repeated failures make `/readyz`
 * say so until the server answers properly again.
 */
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startAgent } from '../../../src/agent/index.js';
import { startTestServer } from '../../helpers/server.js';
import { createJob, ended, fastAgentOptions, importTemplate, shellTemplate, until, waitForJob } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

type Corruption = 'none' | 'bad-entries' | 'object';

/** A proxy to `target` that rewrites job-list answers according to `mode()`. */
async function corruptingProxy(target: string, mode: () => Corruption): Promise<string> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const forward = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          let body = Buffer.concat(chunks);
          const isList = req.method === 'POST' && /^\/v1\/jobs\/list\/?$/.test(req.url ?? '') && answer.statusCode === 200;
          if (isList && mode() !== 'none') body = Buffer.from(JSON.stringify(corrupt(JSON.parse(body.toString()) as Record<string, unknown>[], mode())));
          const headers = { ...answer.headers, 'content-length': String(body.length) };
          delete headers['transfer-encoding'];
          res.writeHead(answer.statusCode ?? 502, headers);
          res.end(body);
        });
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.unref();
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function corrupt(jobs: Record<string, unknown>[], mode: Corruption): unknown {
  if (mode === 'object') return { results: jobs };
  const model = jobs[0] ?? { pk: 1, template: { pk: 1, name: 'x', version: 1 } };
  return [{ ...model, pk: -4 }, { ...model, pk: 'seven' }, { ...model, pk: 99_999, template: null }, 42, null, ...jobs];
}

describe('an agent against a server that sends a malformed job list', () => {
  it('runs the valid jobs behind malformed entries, logs each bad entry once, and shows repeated poll failures in /readyz', { timeout: 120_000 }, async () => {
    const server = await startTestServer({ extensions: false });
    let mode: Corruption = 'bad-entries';
    const proxy = await corruptingProxy(server.url, () => mode);
    const template = await importTemplate(server, shellTemplate('ok', 'echo fine'));
    const dir = await tempDir('ufdl-broken-');
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const agent = await startAgent(fastAgentOptions({ url: proxy }, dir), log, { handleSignals: false });
    onTestFinished(() => agent.close());

    const first = await createJob(server, template);
    const second = await createJob(server, template);
    for (const pk of [first, second]) expect((await waitForJob(server, pk, ended, 60_000)).error_reason).toBeNull();
    const skipped = lines.filter((l) => l.msg === 'skipping a malformed entry of the job list');
    // Five bad entries, each logged once although every poll brought them again.
    expect(skipped.map((l) => l.problem)).toHaveLength(5);
    expect(skipped.map((l) => l.pk)).toEqual(['-4', '"seven"', '99999', undefined, undefined]);
    expect(String(skipped[2]!.problem)).toMatch(/^template: /);

    mode = 'object';
    const readyz = () => fetch(`${agent.statusUrl}/readyz`).then(async (r) => ({ status: r.status, body: (await r.json()) as { reasons: string[] } }));
    // Wait for the poll failures themselves: the slot may still be busy (another reason for 503).
    const pollFailures = /polling the job list failed/;
    await until(async () => (await readyz()).body.reasons.some((r) => pollFailures.test(r)), 30_000, '/readyz to report the failing polls');
    const { status, body } = await readyz();
    expect(status).toBe(503);
    expect(body.reasons.join('\n')).toMatch(/polling the job list failed \d+ times in a row \(last: the server answered the job list with an object with keys \["results"\], not a list of jobs\)/);

    mode = 'none';
    await until(async () => (await readyz()).status === 200, 30_000, '/readyz to be ready again');
    const third = await createJob(server, template);
    expect((await waitForJob(server, third, ended, 60_000)).error_reason).toBeNull();
  });
});
