/**
 * A job the agent cannot prepare (a value its executor refuses) is released and skipped, and the log
 * line says the agent code (docs/ERRORS.md, "Agent codes") beside the sentence: what a log search or
 * an alert matches on.
 */
import { describe, expect, it } from 'vitest';
import { createJob, getJob, importTemplate, recordingLogger, shellTemplate, startTestAgent, until } from '../../helpers/agent.js';
import { startTestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

describe('a job the agent cannot prepare', () => {
  it('is logged with its agent code', async () => {
    const server = await startTestServer({ extensions: false });
    const template = await importTemplate(
      server,
      shellTemplate('job-regex', 'echo hi\n', { progress_regex: { types: ['str'], default: '(?<progress>[0-9.]+)', const: false, help: '' } }),
    );
    // The job's own value: a regex the agent refuses to run (a reference backend takes it unchecked).
    const job = await createJob(server, template, { parameter_values: { progress_regex: { value: '(?<progress>a)\\1', type: 'str' } } });
    const { logger, lines } = recordingLogger();
    await startTestAgent(server, {}, await tempDir('ufdl-prepare-code-'), logger);
    await until(() => lines.some((l) => l.msg === 'preparation failed; releasing the job so that another node can run it'), 30_000, 'the preparation to fail');
    const line = lines.find((l) => l.msg === 'preparation failed; releasing the job so that another node can run it')!;
    expect(line).toMatchObject({ code: 'UFDL_ERR_AGENT_PARAM_BAD', err: expect.stringMatching(/^Parameter 'progress_regex': uses a back-reference/) });
    // Released, not failed: another node may run it.
    await until(async () => (await getJob(server, job)).node === null, 30_000, 'the job to be released');
    expect((await getJob(server, job)).error_reason).toBeNull();
  });
});
