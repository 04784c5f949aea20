/**
 * Progress after the agent re-attaches to a child that outlived it (issue 8, item 2): the reference
 * saw 0.250 → 0.025 → 0.475, because the restarted agent re-read the child's output from the start.
 * The agent is its own process here, killed with SIGKILL and started again on the same journal.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../../helpers/build.js';
import { fastAgentOptions, spawnAgent, until } from '../../helpers/agent.js';
import { startReferenceBackend } from '../../helpers/reference-backend.js';
import { ADMIN_PASSWORD, ADMIN_USER } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

beforeAll(async () => {
  await buildOnce();
}, 180_000);

describe('progress across a re-attach', () => {
  it('never goes backwards: the restarted agent goes on from what it reported before', async () => {
    const ref = await startReferenceBackend();
    ref.addUser(ADMIN_USER, ADMIN_PASSWORD, { admin: true });
    const dir = await tempDir('ufdl-reattach-');
    const go = join(dir, 'go');
    const script = [
      'echo "UFDL-PROGRESS 0.025"',
      'echo "UFDL-PROGRESS 0.25"',
      `while [ ! -e ${go} ]; do sleep 0.05; done`,
      'echo "UFDL-PROGRESS 0.475"',
      'sleep 0.3',
    ].join('\n');
    const template = ref.addTemplate({
      name: 'steps',
      type: "Train<Domain<'Image Classification'>, Framework<'sh', '1'>>",
      executor_class: 'ufdl_agent.Command',
      parameters: { body: { types: ['Array<str>'], default: ['/bin/sh', '-c', script], default_type: 'Array<str>', const: true, help: 'argv' } },
    });
    const job = ref.createJob(template);
    const options = fastAgentOptions({ url: ref.url }, dir);
    const reported = () => ref.progressCalls.filter((c) => c.status === 200).map((c) => Number(c.value));

    const first = spawnAgent(options);
    await until(() => reported().includes(0.25), 20_000, 'progress 0.25 to be reported');
    first.kill('SIGKILL');
    await first.exited;

    const second = spawnAgent(options);
    await second.waitForLog((l) => l.msg === 're-attached to the running child');
    await writeFile(go, '');
    await until(() => ref.job(job.pk).end_time !== null, 20_000, 'the job to finish');
    second.kill('SIGTERM');
    await second.exited;

    expect(existsSync(go)).toBe(true);
    const values = reported();
    expect(values).toContain(0.475);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(ref.job(job.pk).error_reason).toBeNull();
  });
});
