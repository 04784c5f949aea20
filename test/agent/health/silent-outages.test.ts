/**
 * Outages and failing reports are not silent (issue 8, item 3): against the reference stand-in, the
 * agent says once that the server is unreachable and once that it is back, warns (rate-limited) when
 * progress reports fail, and never sends a progress body the reference answers 500 to.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReportFailures } from '../../../src/agent/progress/report-failures.js';
import { recordingLogger, startTestAgent, until } from '../../helpers/agent.js';
import { startReferenceBackend, type ReferenceBackend } from '../../helpers/reference-backend.js';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

/** A job whose child prints `line` every 100 ms until `stop` exists; N in it counts up from 101. */
async function chattyJob(ref: ReferenceBackend, line: string): Promise<{ pk: number; stop: string }> {
  const dir = await tempDir('ufdl-outage-');
  const stop = join(dir, 'stop');
  const script = `i=100\nwhile [ ! -e ${stop} ]; do i=$((i+1)); echo "${line.replace(/"/g, '\\"')}" | sed "s/N/$i/"; sleep 0.1; done\n`;
  const template = ref.addTemplate({
    name: 'chatty',
    type: "Train<Domain<'Image Classification'>, Framework<'sh', '1'>>",
    executor_class: 'ufdl_agent.Command',
    parameters: { body: { types: ['Array<str>'], default: ['/bin/sh', '-c', script], default_type: 'Array<str>', const: true, help: 'argv' } },
  });
  return { pk: ref.createJob(template).pk, stop };
}

const said = (lines: Record<string, unknown>[], msg: string) => lines.filter((l) => l.msg === msg);

describe('silent outages', () => {
  it('logs one warning when the server becomes unreachable, one line when it is back, and rate-limited report failures', async () => {
    const ref = await startReferenceBackend();
    ref.addUser(ADMIN_USER, ADMIN_PASSWORD, { admin: true });
    const job = await chattyJob(ref, 'UFDL-PROGRESS 0.N');
    const { logger, lines } = recordingLogger();
    await startTestAgent({ url: ref.url }, { heartbeatIntervalMs: 200, progressIntervalMs: 100 }, undefined, logger);
    await until(() => ref.progressCalls.some((c) => c.job === job.pk && c.status === 200), 20_000, 'a first progress report');

    ref.setUnreachable(true);
    await until(() => said(lines, 'progress report failed').length > 0, 10_000, 'a failed report to be logged');
    // Reports keep failing every 100 ms for two seconds; the warning is not repeated.
    await new Promise((r) => setTimeout(r, 2000));
    ref.setUnreachable(false);
    await until(() => said(lines, 'the server answers again').length > 0, 10_000, 'the recovery line');
    await until(() => said(lines, 'progress reports reach the server again').length > 0, 10_000, 'reports to recover');
    await writeFile(job.stop, '');
    await until(() => ref.job(job.pk).end_time !== null, 20_000, 'the job to finish');

    const down = said(lines, 'the server is unreachable; running jobs go on, and calls are retried until it answers');
    expect(down).toHaveLength(1);
    expect(down[0]!.retry).toEqual({ pollBackoffS: [0.2, 0.5], heartbeatS: 0.2 });
    const back = said(lines, 'the server answers again');
    expect(back).toHaveLength(1);
    expect(back[0]!.outageMs).toBeGreaterThanOrEqual(1500);
    expect(said(lines, 'progress report failed')).toHaveLength(1);
  });

  it("nests a progress object that holds the reference's reserved keys, so the reports land", async () => {
    const ref = await startReferenceBackend();
    ref.addUser(ADMIN_USER, ADMIN_PASSWORD, { admin: true });
    const job = await chattyJob(ref, 'UFDL-PROGRESS 0.5 {"progress": N, "node": "gpu-a", "loss": 0.1}');
    const { logger, lines } = recordingLogger();
    await startTestAgent({ url: ref.url }, {}, undefined, logger);
    await until(() => ref.progressCalls.filter((c) => c.job === job.pk).length >= 2, 20_000, 'progress reports');
    await writeFile(job.stop, '');
    await until(() => ref.job(job.pk).end_time !== null, 20_000, 'the job to finish');

    const calls = ref.progressCalls.filter((c) => c.job === job.pk);
    expect(calls.every((c) => c.status === 200)).toBe(true);
    expect(calls[0]!.body).toMatchObject({ metadata: { node: 'gpu-a', loss: 0.1 } });
    expect(said(lines, 'progress report failed')).toHaveLength(0);
  });
});

describe('ReportFailures', () => {
  it('warns at once, then at most once per window with the count, and says when reports recover', () => {
    let now = 0;
    const warn: Record<string, unknown>[] = [];
    const info: Record<string, unknown>[] = [];
    const failures = new ReportFailures({ log: { warn: (o: object) => void warn.push(o as Record<string, unknown>), info: (o: object) => void info.push(o as Record<string, unknown>) }, windowMs: 1000, now: () => now });
    for (let i = 0; i < 25; i++, now += 100) failures.failed(new Error('503'), 0.5);
    expect(warn.map((w) => w.failedSinceLastWarning)).toEqual([1, 10, 10]);
    failures.succeeded();
    failures.succeeded();
    expect(info).toEqual([{ failedInARow: 25 }]);
    failures.failed(new Error('503'), 0.6);
    expect(warn).toHaveLength(4);
  });
});
