/**
 * Several slots on one agent: each slot is a node of its own (the server lets a node work one job at
 * a time), jobs run side by side, and a CPU slot hides the GPUs (`CUDA_VISIBLE_DEVICES` empty).
 */
import { describe, expect, it } from 'vitest';
import { startTestServer } from '../helpers/server.js';
import { createJob, downloadOutput, ended, importTemplate, shellTemplate, startTestAgent, waitForJob } from '../helpers/agent.js';

describe('slots', () => {
  it('runs one job per slot at the same time, each slot as its own node', async () => {
    const server = await startTestServer();
    const template = await importTemplate(
      server,
      shellTemplate('side-by-side', 'date +%s%N > "$UFDL_OUTPUT_DIR/start"\nsleep 1\ndate +%s%N > "$UFDL_OUTPUT_DIR/end"\nprintf "[%s]" "$CUDA_VISIBLE_DEVICES" > "$UFDL_OUTPUT_DIR/cuda"\n'),
    );
    const { agent } = await startTestAgent(server, { slots: 2 });
    const status = agent.getStatus();
    expect(status.slots).toHaveLength(2);
    expect(new Set(status.slots.map((s) => s.nodePk)).size).toBe(2);
    const pks = [await createJob(server, template), await createJob(server, template)];
    const jobs = await Promise.all(pks.map((pk) => waitForJob(server, pk, ended)));
    for (const job of jobs) expect(job.error_reason).toBeNull();
    expect(new Set(jobs.map((j) => j.node)).size).toBe(2);
    const times = await Promise.all(
      pks.map(async (pk) => ({
        start: BigInt((await downloadOutput(server, pk, 'start')).toString().trim()),
        end: BigInt((await downloadOutput(server, pk, 'end')).toString().trim()),
      })),
    );
    // They overlapped: each started before the other ended.
    expect(times[0]!.start < times[1]!.end && times[1]!.start < times[0]!.end).toBe(true);
    for (const pk of pks) expect((await downloadOutput(server, pk, 'cuda')).toString()).toBe('[]');
  });
});
