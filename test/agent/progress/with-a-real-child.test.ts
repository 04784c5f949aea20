/**
 * Progress from real children: a flood of marker lines, a regex parser on stderr, a silent child.
 */
import { appendFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { spawnJob } from '../../../src/agent/child/spawn.js';
import { JobProgress } from '../../../src/agent/progress/job-progress.js';
import type { ProgressUpdate } from '../../../src/agent/progress/update.js';
import { until } from '../../helpers/wait.js';
import { reapOnFinish, shellSpec, tempJobDir } from '../child/helpers.js';

describe('JobProgress with a real child', () => {
  it('coalesces 10 000 marker lines a second into a few reports and delivers the last one', async () => {
    const dir = await tempJobDir();
    // 20 bursts of 1000 lines, ten bursts a second: 20 000 lines over about two seconds. Noise
    // lines in between must be skipped without cost.
    const script = `
      b=0
      while [ $b -lt 20 ]; do
        awk -v b=$b 'BEGIN { for (j = 1; j <= 1000; j++) { n = b * 1000 + j;
          printf "UFDL-PROGRESS %.6f {\\"line\\": %d}\\n", n / 20000, n; print "training step", n } }'
        b=$((b + 1))
        sleep 0.1
      done`;
    const reports: Array<ProgressUpdate & { at: number }> = [];
    const progress = new JobProgress({
      files: [dir.consolePath],
      intervalMs: 500,
      pollMs: 100,
      report: (u) => void reports.push({ ...u, at: Date.now() }),
    });
    progress.start();
    const cpuBefore = process.cpuUsage();
    const startedAt = Date.now();
    const child = await spawnJob(shellSpec(dir, script));
    reapOnFinish(child);
    expect((await child.exited).code).toBe(0);
    await progress.stop();
    const elapsedMs = Date.now() - startedAt;
    const cpu = process.cpuUsage(cpuBefore);

    expect(progress.stats.lines).toBe(40_000);
    // The final value and its data always arrive, exactly once, last.
    expect(reports.at(-1)).toMatchObject({ progress: 1, data: { line: 20_000 } });
    expect(reports.filter((r) => r.progress === 1)).toHaveLength(1);
    // One report per interval at most, plus the first and the final flush.
    expect(reports.length).toBeLessThanOrEqual(Math.ceil(elapsedMs / 500) + 2);
    expect(reports.length).toBeGreaterThanOrEqual(2);
    for (let i = 2; i < reports.length - 1; i++) {
      expect(reports[i]!.at - reports[i - 1]!.at).toBeGreaterThanOrEqual(490);
    }
    // Values only move forward here, as the child printed them.
    const values = reports.map((r) => r.progress);
    expect([...values].sort((a, b) => a - b)).toEqual(values);
    // A generous bound: parsing 40 000 lines costs this process well under a CPU-second. What it
    // guards against is per-line work that grows with the file (re-reading, re-splitting).
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(3000);
  });

  it("uses the template's regex on stderr progress bars redrawn with \\r", async () => {
    const dir = await tempJobDir();
    const reports: ProgressUpdate[] = [];
    const progress = new JobProgress({
      files: [dir.consolePath],
      regex: /Epoch (?<epoch>\d+)\/(?<epochs>\d+)/,
      intervalMs: 60_000,
      report: (u) => void reports.push(u),
    });
    progress.start();
    const child = await spawnJob(shellSpec(dir, `printf 'Epoch 1/4\\rEpoch 2/4\\rEpoch 3/4\\r' >&2; echo done`));
    reapOnFinish(child);
    await child.exited;
    await progress.stop();
    // The first report goes out at once; within the (long) interval only the final flush follows.
    expect(reports).toEqual([
      { progress: 0.25, data: { epoch: 1, epochs: 4 } },
      { progress: 0.75, data: { epoch: 3, epochs: 4 } },
    ]);
    expect(progress.last).toEqual({ progress: 0.75, data: { epoch: 3, epochs: 4 } });
  });

  it('ignores the regex once the child has printed a marker', async () => {
    const dir = await tempJobDir();
    const reports: ProgressUpdate[] = [];
    const progress = new JobProgress({
      files: [dir.consolePath],
      regex: /(?<percent>\d+)%/,
      intervalMs: 60_000,
      report: (u) => void reports.push(u),
    });
    progress.start();
    const script = 'echo "10% before markers"; sleep 0.5; echo "UFDL-PROGRESS 0.5"; echo "90% later" >&2; echo "99% too"';
    const child = await spawnJob(shellSpec(dir, script));
    reapOnFinish(child);
    await child.exited;
    await progress.stop();
    expect(reports.map((r) => r.progress)).toEqual([0.1, 0.5]);
  });

  it('reports nothing for a child that never prints', async () => {
    const dir = await tempJobDir();
    const reports: ProgressUpdate[] = [];
    const progress = new JobProgress({
      files: [dir.consolePath],
      intervalMs: 100,
      pollMs: 20,
      report: (u) => void reports.push(u),
    });
    progress.start();
    const child = await spawnJob(shellSpec(dir, 'sleep 1'));
    reapOnFinish(child);
    await child.exited;
    await progress.stop();
    expect(reports).toEqual([]);
    expect(progress.stats).toEqual({ lines: 0, reports: 0, parserDisabled: false });
  });

  it('after a re-attach, replays what the child printed meanwhile and goes on from the last value reported', async () => {
    const dir = await tempJobDir();
    // What the child printed while no agent followed it: the old lines must not be sent again.
    await writeFile(dir.consolePath, 'epoch 1 of 40\nUFDL-PROGRESS 0.025\nUFDL-PROGRESS 0.25 {"epoch": 10}\nUFDL-PROGRESS 0.3\n');
    const reports: ProgressUpdate[] = [];
    const progress = new JobProgress({
      files: [dir.consolePath],
      intervalMs: 10,
      pollMs: 20,
      resume: { lastReported: 0.25 },
      report: (u) => void reports.push(u),
    });
    progress.start();
    await until(() => reports.length === 1, 20_000, 'the replayed value');
    await appendFile(dir.consolePath, 'UFDL-PROGRESS 0.475\n');
    await until(() => reports.length === 2, 20_000, 'the new value');
    await progress.stop();
    expect(reports.map((r) => r.progress)).toEqual([0.3, 0.475]);
  });

  it('after a re-attach, reports nothing until the child prints a value above the last one reported', async () => {
    const dir = await tempJobDir();
    await writeFile(dir.consolePath, 'UFDL-PROGRESS 0.025\nUFDL-PROGRESS 0.25\n');
    const reports: ProgressUpdate[] = [];
    const progress = new JobProgress({ files: [dir.consolePath], intervalMs: 10, pollMs: 20, resume: { lastReported: 0.25 }, report: (u) => void reports.push(u) });
    progress.start();
    await appendFile(dir.consolePath, 'UFDL-PROGRESS 0.5\n');
    await until(() => reports.length === 1, 20_000, 'a value above the last one reported');
    await progress.stop();
    expect(reports.map((r) => r.progress)).toEqual([0.5]);
  });
});
