/**
 * One job from template to results with every execution module wired as the job loop wires them
 * (no HTTP): registry → job dir → launch → progress + supervisor → outputs + log → finish text.
 */
import { describe, expect, it } from 'vitest';
import { createJobDir, jobDirPaths } from '../../../src/agent/child/job-dir.js';
import { finishErrorText, succeeded } from '../../../src/agent/child/exit-text.js';
import { ChildSupervisor } from '../../../src/agent/child/supervisor.js';
import { commandExecutor } from '../../../src/agent/executors/command.js';
import { launchJob } from '../../../src/agent/executors/launch.js';
import { ExecutorRegistry } from '../../../src/agent/executors/registry.js';
import { shellExecutor } from '../../../src/agent/executors/shell.js';
import { writeJobLog } from '../../../src/agent/outputs/job-log.js';
import { scanOutputs } from '../../../src/agent/outputs/scan.js';
import { JobProgress } from '../../../src/agent/progress/job-progress.js';
import type { ProgressUpdate } from '../../../src/agent/progress/update.js';
import type { JobJson, TemplateJson } from '../../../src/protocol/wire.js';
import { readText, reapOnFinish, tempWorkDir } from '../child/helpers.js';
import { job, param, template, typed } from './fixtures.js';

const registry = new ExecutorRegistry([commandExecutor, shellExecutor]);

/** What the job loop does between "started" and "finish", minus the HTTP calls. */
async function runJob(work: string, j: JobJson, t: TemplateJson) {
  expect(registry.canRun(t)).toBeUndefined();
  const dir = await createJobDir(jobDirPaths(work, 'http://ufdl.test', j.pk));
  const { child, prepared } = await launchJob(registry.executorFor(t.executor_class)!, j, t, {
    dir,
    gpu: null,
    serverUrl: 'http://127.0.0.1:1',
    nodePk: 1,
    attempt: 1,
  });
  reapOnFinish(child);
  const reports: ProgressUpdate[] = [];
  const progress = new JobProgress({
    files: [dir.consolePath],
    regex: prepared.settings.progressRegex,
    intervalMs: 200,
    pollMs: 50,
    report: (u) => void reports.push(u),
  });
  progress.start();
  const supervisor = new ChildSupervisor(child, {
    timeLimitMs: prepared.settings.timeLimitMs,
    killGraceMs: 2000,
    outside: prepared.spec.outside,
  });
  const result = await supervisor.done;
  await progress.stop();
  const outputs = await scanOutputs(dir.outputDir, prepared.settings.outputTypes);
  const log = await writeJobLog(dir, 1024 ** 2);
  const error = await finishErrorText(result, dir, { timeLimitMs: prepared.settings.timeLimitMs });
  return { dir, result, reports, outputs, log, error };
}

describe('a job end to end, without a server', () => {
  it('runs a Shell template: progress, typed outputs, log, success', async () => {
    const t = template('ufdl_agent.Shell', {
      body: param(
        [
          'echo "UFDL-PROGRESS 0.1 {\\"comment\\": \\"starting\\"}"',
          'for e in 1 2 3 4; do echo "Epoch $e/4" >&2; done',
          'printf %s ${greeting} > "$UFDL_OUTPUT_DIR/greeting.txt"',
          'echo model > "$UFDL_OUTPUT_DIR/model.zip"',
          'echo "UFDL-PROGRESS 1 {\\"comment\\": \\"done\\"}"',
        ],
        ['Array<str>'],
      ),
      greeting: param('hello', ['str'], false),
      progress_regex: param('Epoch (?<epoch>\\d+)/(?<epochs>\\d+)'),
      outputs: param({ 'model.zip': 'Compressed<JSON, 8>' }, ['JSON']),
      time_limit: param(60, ['float']),
    });
    const run = await runJob(await tempWorkDir(), job(21, { greeting: typed('hi there') }), t);

    expect(succeeded(run.result)).toBe(true);
    expect(run.error).toBeUndefined();
    expect(run.reports[0]).toEqual({ progress: 0.1, data: { comment: 'starting' } });
    expect(run.reports.at(-1)).toEqual({ progress: 1, data: { comment: 'done' } });
    expect(await Promise.all(run.outputs.files.map(async (f) => [f.name, f.type, await readText(f.path)]))).toEqual([
      ['greeting.txt', 'BLOB', 'hi there'],
      ['model.zip', 'Compressed<JSON, 8>', 'model\n'],
    ]);
    expect(run.outputs.missing).toEqual([]);
    expect(await readText(run.log.path)).toBe(
      'UFDL-PROGRESS 0.1 {"comment": "starting"}\nEpoch 1/4\nEpoch 2/4\nEpoch 3/4\nEpoch 4/4\nUFDL-PROGRESS 1 {"comment": "done"}\n',
    );
  });

  it('fails a Command job that exceeds the time limit its job asked for', async () => {
    const t = template('ufdl_agent.Command', {
      body: param(['/bin/sh', '-c', 'echo "working on $1"; exec sleep 300', 'sh', '${what}'], ['Array<str>']),
      what: param('it', ['str'], false),
      time_limit: param(0, ['float'], false),
    });
    const run = await runJob(await tempWorkDir(), job(22, { time_limit: typed(0.5, 'float') }), t);
    expect(run.result.stopReason).toBe('time-limit');
    expect(run.error).toMatch(/^Time limit of 0.5 s exceeded; the command was killed by SIGTERM\n--- last 2 lines of the output ---\nworking on it\nTerminated$/);
    expect(run.outputs.files).toEqual([]);
  });
});
