/**
 * Several slots on one agent: each slot is a node of its own (the server lets a node work one job at
 * a time), jobs run side by side, a CPU slot hides the GPUs (`CUDA_VISIBLE_DEVICES` empty), and all
 * slots share one login.
 */
import { describe, expect, it } from 'vitest';
import { CAPABILITIES_PATH } from '../../../src/protocol/wire.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { createJob, downloadOutput, ended, importTemplate, shellTemplate, startTestAgent, waitForJob } from '../../helpers/agent.js';
import { tempDir } from '../../helpers/temp-dir.js';

/** Requests the server answered on `route` (any method and status), from its `/metrics`. */
async function requestsTo(server: TestServer, route: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('ufdl_server_http_requests_total{') && line.includes(`route="${route}"`)) total += Number(line.split(' ').pop());
  }
  return total;
}

describe('slots', () => {
  it('runs one job per slot at the same time, each slot as its own node', async () => {
    const server = await startTestServer();
    // A rendezvous, not a clock: each job marks itself present, then waits (up to two minutes) until
    // the other is present too. Side by side, both see two; one after the other, the first sees one.
    const meeting = await tempDir('ufdl-slots-');
    const template = await importTemplate(
      server,
      shellTemplate(
        'side-by-side',
        `touch '${meeting}/'"$UFDL_JOB_PK"\n` +
          `n=0; while [ "$(ls '${meeting}' | wc -l)" -lt 2 ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done\n` +
          `ls '${meeting}' | wc -l | tr -d ' ' > "$UFDL_OUTPUT_DIR/seen"\n` +
          'printf "[%s]" "$CUDA_VISIBLE_DEVICES" > "$UFDL_OUTPUT_DIR/cuda"\n',
      ),
    );
    const { agent } = await startTestAgent(server, { slots: 2 });
    const status = agent.getStatus();
    expect(status.slots).toHaveLength(2);
    expect(new Set(status.slots.map((s) => s.nodePk)).size).toBe(2);
    const pks = [await createJob(server, template), await createJob(server, template)];
    const jobs = await Promise.all(pks.map((pk) => waitForJob(server, pk, ended, 200_000)));
    for (const job of jobs) expect(job.error_reason).toBeNull();
    expect(new Set(jobs.map((j) => j.node)).size).toBe(2);
    // They overlapped: each found the other present.
    for (const pk of pks) expect((await downloadOutput(server, pk, 'seen')).toString().trim()).toBe('2');
    for (const pk of pks) expect((await downloadOutput(server, pk, 'cuda')).toString()).toBe('[]');
  }, 240_000);

  it('logs in once and asks for capabilities once for all slots, and runs a job on each slot node', async () => {
    const server = await startTestServer();
    const template = await importTemplate(server, shellTemplate('one-login', 'sleep 1\necho "$UFDL_JOB_PK" > "$UFDL_OUTPUT_DIR/pk"\n'));
    const loginsBefore = await requestsTo(server, '/v1/auth/obtain');
    const capabilitiesBefore = await requestsTo(server, CAPABILITIES_PATH);
    const { agent } = await startTestAgent(server, { slots: 3 });
    const nodes = agent.getStatus().slots.map((s) => s.nodePk);
    expect(new Set(nodes).size).toBe(3);
    const pks = await Promise.all([0, 1, 2].map(() => createJob(server, template)));
    const jobs = await Promise.all(pks.map((pk) => waitForJob(server, pk, ended)));
    for (const job of jobs) expect(job.error_reason).toBeNull();
    // Each job ran as one of the slots' nodes, all three of them (one job a node at a time, side by side).
    expect(new Set(jobs.map((j) => j.node))).toEqual(new Set(nodes));
    expect(await requestsTo(server, '/v1/auth/obtain')).toBe(loginsBefore + 1);
    expect(await requestsTo(server, CAPABILITIES_PATH)).toBe(capabilitiesBefore + 1);
  });
});
