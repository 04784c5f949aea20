/**
 * `ufdl-agent logs PK [-f]` and `submit --wait --logs`, as built CLI processes against a real server
 * and agent: the printed log is the job's `log` output byte for byte, `-f` exits like `watch`, and
 * a server without live logs gets the `log` output instead.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createJob, downloadOutput, ended, importTemplate, shellTemplate, startTestAgent, waitForJob } from '../helpers/agent.js';
import { buildOnce } from '../helpers/build.js';
import { startTestServer } from '../helpers/server.js';
import { cli, expectOneLineError, serverEnv, startCli } from './commands-support.js';

const SCRIPT = 'i=0; while [ $i -lt ${lines} ]; do i=$((i+1)); echo "step $i"; [ $((i % 4)) -eq 0 ] && echo "note $i" >&2; sleep 0.05; done; exit ${status}';

function template(): Record<string, unknown> {
  return shellTemplate('steps', SCRIPT, {
    lines: { types: ['int'], default: 30, help: 'lines' },
    status: { types: ['int'], default: 0, help: 'exit status' },
  });
}

beforeAll(buildOnce, 240_000);

describe('ufdl-agent logs', () => {
  it('follows a running job to its end (exit 0), printing exactly its log output; then prints it again whole', async () => {
    const server = await startTestServer();
    const pk = await createJob(server, await importTemplate(server, template()));
    // The follower starts before the agent takes the job: it waits for the start.
    const follow = startCli(['logs', String(pk), '-f'], { env: serverEnv(server), timeoutMs: 60_000 });
    await startTestAgent(server);
    const result = await follow.result;
    expect(result.code, result.stderr).toBe(0);
    const log = await downloadOutput(server, pk, 'log');
    expect(log.toString()).toContain('step 30');
    expect(result.stdout).toBe(log.toString());
    const again = await cli(['logs', String(pk)], { env: serverEnv(server) });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(log.toString());
  });

  it('exits 1 when the followed job errors, like watch', async () => {
    const server = await startTestServer();
    const pk = await createJob(server, await importTemplate(server, template()), { parameter_values: { status: { value: 3, type: 'int' }, lines: { value: 5, type: 'int' } } });
    await startTestAgent(server);
    const result = await cli(['logs', String(pk), '-f'], { env: serverEnv(server), timeoutMs: 60_000 });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe((await downloadOutput(server, pk, 'log')).toString());
    expect(result.stderr).toMatch(new RegExp(`job ${pk} errored: The command exited with status 3`));
  });

  it('says what is wrong with an unknown job', async () => {
    const server = await startTestServer();
    expectOneLineError(await cli(['logs', '999'], { env: serverEnv(server) }), 1, /^ufdl-agent: job 999: Not found\.$/);
  });

  it('prints the log output on a server without live logs, and refuses a running job there with a reason', async () => {
    const server = await startTestServer({ extensions: false });
    const templatePk = await importTemplate(server, template());
    const pk = await createJob(server, templatePk, { parameter_values: { lines: { value: 3, type: 'int' } } });
    await startTestAgent(server);
    await waitForJob(server, pk, ended);
    const result = await cli(['logs', String(pk)], { env: serverEnv(server) });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('step 1\nstep 2\nstep 3\n');
    const queued = await createJob(server, templatePk, { parameter_values: { lines: { value: 200, type: 'int' } } });
    await waitForJob(server, queued, (j) => j.start_time !== null);
    expectOneLineError(await cli(['logs', String(queued)], { env: serverEnv(server) }), 1, /has no log yet: this server has no live logs/);
  });
});

describe('ufdl-agent submit --wait --logs', () => {
  it('shows the log as the job runs and exits 0 when it finishes', async () => {
    const server = await startTestServer();
    await importTemplate(server, template());
    await startTestAgent(server);
    const result = await cli(['submit', 'steps', '--param', 'lines=12', '--wait', '--logs'], { env: serverEnv(server), timeoutMs: 60_000 });
    expect(result.code, result.stderr).toBe(0);
    const pk = Number(result.stdout.split('\n')[0]);
    const log = (await downloadOutput(server, pk, 'log')).toString();
    // Not a terminal: the log's lines as they are, among the job's state lines.
    for (const line of log.trim().split('\n')) expect(result.stdout).toContain(`${line}\n`);
    expect(result.stdout).toMatch(/finish/);
  });
});
