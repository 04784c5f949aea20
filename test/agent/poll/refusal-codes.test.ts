/**
 * A job the node cannot run because of its template alone is skipped with a log line that carries
 * the refusal's agent code (docs/ERRORS.md, "Agent codes"), as a preparation failure's line does, so
 * that a log search or an alert can match on it; the sentence the server shows as the job's waiting
 * reason stays the same. The line had only the sentence (`canRun` returned plain strings).
 */
import { describe, expect, it } from 'vitest';
import { createJob, getJob, importTemplate, recordingLogger, runTemplate, shellTemplate, startTestAgent, until } from '../../helpers/agent.js';
import { startTestServer } from '../../helpers/server.js';

const param = (value: unknown, types = ['str']) => ({ types, default: value, const: true, help: '' });

describe('a job this node cannot run because of its template', () => {
  it('is skipped with a log line naming the agent code; the waiting reason sent is the sentence alone', { timeout: 60_000 }, async () => {
    const server = await startTestServer();
    // Each imports (the server does not judge these), and each is refused by the agent for another reason.
    const cases = [
      {
        template: runTemplate('needs-docker', 'ufdl_agent.Docker', { image: param('busybox') }),
        code: 'UFDL_ERR_AGENT_EXECUTOR_UNKNOWN',
        reason: 'executor ufdl_agent.Docker is not available on this node: disabled by configuration',
      },
      {
        template: runTemplate('no-body', 'ufdl_agent.Shell', {}),
        code: 'UFDL_ERR_AGENT_PARAM_MISSING',
        reason: "template 'no-body' declares no 'body' parameter, which ufdl_agent.Shell needs",
      },
      {
        template: shellTemplate('bad-regex', 'echo hi', { progress_regex: param('(?<progress>a)\\1') }),
        code: 'UFDL_ERR_AGENT_PARAM_BAD',
        reason: expect.stringMatching(/^template 'bad-regex': Parameter 'progress_regex': uses a back-reference/),
      },
    ];
    const jobs: number[] = [];
    for (const c of cases) jobs.push(await createJob(server, await importTemplate(server, c.template)));
    const { logger, lines } = recordingLogger();
    const agent = await startTestAgent(server, { docker: false }, undefined, logger);
    const node = agent.agent.getStatus().slots[0]!.nodePk;

    const skipLine = (job: number) => lines.find((l) => l.msg === 'skipping a job this node cannot run' && l.job === job);
    const waiting = async (job: number) => ((await getJob(server, job)) as unknown as { waiting?: { node: number; reason: string }[] }).waiting;
    for (const [i, c] of cases.entries()) {
      const job = jobs[i]!;
      await until(async () => skipLine(job) !== undefined && (await waiting(job)) !== undefined, 30_000, `job ${job} skipped and its reason on the server`);
      expect(skipLine(job)).toMatchObject({ code: c.code, reason: c.reason });
      expect(await waiting(job)).toEqual([{ node, reason: c.reason, since: expect.any(String) }]);
    }
  });
});
