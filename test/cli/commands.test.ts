/**
 * The operator CLI, run as the built `ufdl-agent` against a real embedded server: templates, submit,
 * jobs, cancel, outputs and download, users, and the exit statuses and one-line messages of its
 * errors. Jobs are driven through their lifecycle with the API, as a node would.
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openJournal } from '../../src/agent/journal/index.js';
import { buildOnce } from '../helpers/build.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { startReferenceBackend } from '../helpers/reference-backend.js';
import { ADMIN_PASSWORD, ADMIN_USER, api, startTestServer } from '../helpers/server.js';
import { ROOT, TEMPLATES, TestNode, cli, expectOneLineError, serverEnv, serverWithTemplates } from './commands-support.js';
import { tempDir } from '../helpers/temp-dir.js';

beforeAll(buildOnce, 240_000);

describe('templates', () => {
  it('imports the example templates and lists them as a table and as JSON', async () => {
    const server = await startTestServer();
    const env = serverEnv(server);
    const imported = await cli(['templates', 'import', ...TEMPLATES], { env });
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/imported train-epochs version 1 \(pk \d+\)/);
    expect(imported.stdout.trim().split('\n')).toHaveLength(3);

    const table = await cli(['templates', 'list'], { env });
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\s*PK\s+NAME\s+VERSION\s+TYPE\s+EXECUTOR$/);
    expect(lines.slice(1).map((l) => l.trim().split(/\s+/)[1])).toEqual(['predict', 'shell-hello', 'train-epochs']);

    const json = await cli(['templates', 'list', '--json'], { env });
    const list = JSON.parse(json.stdout) as { name: string; executor_class: string }[];
    expect(list.map((t) => t.name)).toEqual(['predict', 'shell-hello', 'train-epochs']);
    expect(list.every((t) => t.executor_class === 'ufdl_agent.Shell')).toBe(true);
  });

  it('refuses a file that is not JSON before importing anything (64)', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-cli-');
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{ not json');
    const result = await cli(['templates', 'import', TEMPLATES[0]!, bad], { env: serverEnv(server) });
    expectOneLineError(result, 64, /bad\.json is not valid JSON/);
    const list = await cli(['templates', 'list', '--json'], { env: serverEnv(server) });
    expect(JSON.parse(list.stdout)).toEqual([]);
  });
});

describe('submit, jobs, cancel', () => {
  it('submits by name with typed parameters and prints the job pk', async () => {
    const server = await serverWithTemplates();
    const env = serverEnv(server);
    const result = await cli(['submit', 'train-epochs', '--param', 'epochs=3', '-p', 'epoch_seconds=0.5', '--description', 'from the CLI'], { env });
    expect(result.code, result.stderr).toBe(0);
    const pk = Number(result.stdout.trim());
    expect(pk).toBeGreaterThan(0);
    const job = (await api(server.url, 'GET', `/v1/jobs/${pk}`, { token: server.adminToken })).body;
    expect(job.template.name).toBe('train-epochs');
    expect(job.description).toBe('from the CLI');
    expect(job.parameter_values).toEqual({ epochs: { value: 3, type: 'int' }, epoch_seconds: { value: 0.5, type: 'float' } });
  });

  it('submits by pk, and takes a JobOutput input as an output pk', async () => {
    const server = await serverWithTemplates();
    const env = serverEnv(server);
    const train = Number((await cli(['submit', 'train-epochs'], { env })).stdout.trim());
    const node = await TestNode.create(server);
    await node.acquireAndStart(train);
    const output = (await node.upload(train, 'model.bin', 'BLOB', 'weights')).body as { pk: number };
    await node.finish(train);

    const templates = JSON.parse((await cli(['templates', 'list', '--json'], { env })).stdout) as { pk: number; name: string }[];
    const predict = templates.find((t) => t.name === 'predict')!;
    const result = await cli(['submit', String(predict.pk), '--input', `model=${output.pk}`, '--param', 'items=4', '--json'], { env });
    expect(result.code, result.stderr).toBe(0);
    const job = JSON.parse(result.stdout);
    expect(job.state).toBe('created');
    expect(job.input_values).toEqual({ model: { value: output.pk, type: 'JobOutput<BLOB>' } });
    expect(job.parameter_values).toEqual({ items: { value: 4, type: 'int' } });

    // A value the server refuses: status 1 with the server's detail.
    const unknown = await cli(['submit', 'predict', '--input', 'model=4242'], { env });
    expectOneLineError(unknown, 1, /^ufdl-agent: template 'predict' \(pk \d+\): .*4242/);
  });

  it('refuses bad parameters with one line and status 64, and creates nothing', async () => {
    const server = await serverWithTemplates();
    const env = serverEnv(server);
    expectOneLineError(await cli(['submit', 'train-epochs', '--param', 'epochs=many'], { env }), 64, /--param epochs=many: not a valid value \(as int: expected an integer\)/);
    expectOneLineError(await cli(['submit', 'train-epochs', '--param', 'nope=1'], { env }), 64, /template 'train-epochs' has no such parameter \(settable: epochs, epoch_seconds\)/);
    expectOneLineError(await cli(['submit', 'train-epochs', '--param', 'body=x'], { env }), 64, /the parameter is const/);
    expectOneLineError(await cli(['submit', 'train-epochs', '--param', 'epochs'], { env }), 64, /--param expects NAME=VALUE/);
    expectOneLineError(await cli(['submit', 'predict'], { env }), 64, /template 'predict' needs --input for: model \(JobOutput<BLOB>\)/);
    expectOneLineError(await cli(['submit', 'predict', '--input', 'model=abc'], { env }), 64, /expected the pk of a job output/);
    const jobs = await api(server.url, 'POST', '/v1/jobs/list', { token: server.adminToken, json: {} });
    expect(jobs.body).toEqual([]);
  });

  it('says which template is unknown, by name or by pk (1)', async () => {
    const server = await serverWithTemplates();
    const env = serverEnv(server);
    expectOneLineError(await cli(['submit', 'no-such-template'], { env }), 1, /^ufdl-agent: unknown template 'no-such-template'/);
    expectOneLineError(await cli(['submit', '999'], { env }), 1, /^ufdl-agent: template 999: Not found\.$/);
  });

  it('lists jobs as a table, filtered by state, limited, and as JSON; cancels one', async () => {
    const server = await serverWithTemplates();
    const env = serverEnv(server);
    const pks: number[] = [];
    for (const name of ['shell-hello', 'train-epochs', 'shell-hello']) {
      const result = await cli(['submit', name], { env });
      expect(result.code, result.stderr).toBe(0);
      pks.push(Number(result.stdout.trim()));
    }
    const node = await TestNode.create(server);
    await node.acquireAndStart(pks[1]!);
    await node.progress(pks[1]!, '0.25');

    const table = await cli(['jobs'], { env });
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\s*PK\s+TEMPLATE\s+STATE\s+NODE\s+PROGRESS\s+AGE$/);
    const rows = lines.slice(1).map((line) => line.trim().split(/\s+/));
    expect(rows.map((r) => Number(r[0]))).toEqual([...pks].reverse());
    // Its last progress (the job JSON's `progress` on this server; the reference's job has none).
    expect(rows[1]).toEqual([String(pks[1]), 'train-epochs@1', 'running', String(node.pk), '25%', expect.stringMatching(/^\d+s$/)]);
    expect(rows[0]!.slice(1, 4)).toEqual(['shell-hello@1', 'created', '-']);

    const running = await cli(['jobs', '--state', 'running', '--json'], { env });
    expect((JSON.parse(running.stdout) as { pk: number; state: string }[]).map((j) => [j.pk, j.state])).toEqual([[pks[1], 'running']]);
    const limited = await cli(['jobs', '--limit', '2', '--json'], { env });
    expect((JSON.parse(limited.stdout) as { pk: number }[]).map((j) => j.pk)).toEqual([pks[2], pks[1]]);

    const cancelled = await cli(['cancel', String(pks[0])], { env });
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toBe(`job ${pks[0]}: cancelled\n`);
    const again = await cli(['cancel', String(pks[0])], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/has already ended \(cancelled\); nothing to cancel/);
    const created = await cli(['jobs', '--state', 'created', '--json'], { env });
    expect((JSON.parse(created.stdout) as { pk: number }[]).map((j) => j.pk)).toEqual([pks[2]]);
    const states = await cli(['jobs', '--state', 'cancelled', '--json'], { env });
    expect((JSON.parse(states.stdout) as { pk: number }[]).map((j) => j.pk)).toEqual([pks[0]]);

    expectOneLineError(await cli(['jobs', '--state', 'sleeping'], { env }), 64, /--state must be one of created, acquired, running, finished, errored, cancelled/);
    expectOneLineError(await cli(['jobs', '--limit', 'ten'], { env }), 64, /--limit must be a non-negative integer/);
    expectOneLineError(await cli(['cancel', '424242'], { env }), 1, /^ufdl-agent: job 424242: Not found\.$/);
  });
});

describe('submit to a contract template (Train, Predict)', () => {
  const TRAIN = join(ROOT, 'config/templates/reference-train.json');
  const DATASET_TYPE = "PK<Dataset<Domain<'Image Classification'>>>";

  it('derives the input types from the contract, against the reference', async () => {
    const ref = await startReferenceBackend();
    ref.addUser(ADMIN_USER, ADMIN_PASSWORD, { admin: true });
    const env = { UFDL_AGENT_SERVER_URL: ref.url, UFDL_AGENT_SERVER_USERNAME: ADMIN_USER, UFDL_AGENT_SERVER_PASSWORD: ADMIN_PASSWORD };
    expect((await cli(['templates', 'import', TRAIN], { env })).code).toBe(0);
    const result = await cli(['submit', 'reference-train', '--input', 'dataset=2', '--param', 'epochs=3'], { env });
    expect(result.code, result.stderr).toBe(0);
    const job = ref.job(Number(result.stdout.trim()));
    expect(job.input_values).toEqual({ dataset: { value: 2, type: DATASET_TYPE } });
    expectOneLineError(await cli(['submit', 'reference-train'], { env }), 64, new RegExp(`needs --input for: dataset \\(${DATASET_TYPE.replace(/[<>'()]/g, '.')}\\)`));
    expectOneLineError(await cli(['submit', 'reference-train', '--input', 'dataset=abc'], { env }), 64, /--input dataset=abc: not a valid value \(as PK<.*>: expected a primary key\)/);
  });

  it('does the same against our server', async () => {
    const server = await serverWithTemplates();
    const env = serverEnv(server);
    expect((await cli(['templates', 'import', TRAIN], { env })).code).toBe(0);
    const result = await cli(['submit', 'reference-train', '--input', 'dataset=2', '--json'], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).input_values).toEqual({ dataset: { value: 2, type: DATASET_TYPE } });
  });
});

describe('outputs and download', () => {
  it('lists the outputs of a job and streams one into a file, refusing to overwrite without --force', async () => {
    const server = await serverWithTemplates();
    const env = serverEnv(server);
    const pk = Number((await cli(['submit', 'train-epochs'], { env })).stdout.trim());
    const node = await TestNode.create(server);
    await node.acquireAndStart(pk);
    const model = 'model bytes\n'.repeat(1000);
    await node.upload(pk, 'model.bin', 'BLOB', model);
    await node.upload(pk, 'log', 'Compressed<JSON, 8>', '{}');
    await node.finish(pk);

    const table = await cli(['outputs', String(pk)], { env });
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+TYPE\s+PK$/);
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/).slice(0, 2))).toEqual([
      ['model.bin', 'BLOB'],
      ['log', 'Compressed<JSON, 8>'],
    ]);
    const json = JSON.parse((await cli(['outputs', String(pk), '--json'], { env })).stdout) as { name: string; type: string; pk: number }[];
    expect(json.map((o) => o.name)).toEqual(['model.bin', 'log']);

    const dir = await tempDir('ufdl-cli-');
    const first = await cli(['download', String(pk), 'model.bin'], { env, cwd: dir });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/model\.bin \(model\.bin, BLOB, 11\.7 KiB\)/);
    expect(await readFile(join(dir, 'model.bin'), 'utf8')).toBe(model);

    const refused = await cli(['download', String(pk), 'model.bin'], { env, cwd: dir });
    expectOneLineError(refused, 1, /model\.bin already exists; use --force to replace it/);

    await writeFile(join(dir, 'other'), 'old');
    const forced = await cli(['download', String(pk), 'log', '--type', 'Compressed<JSON, 8>', '-o', join(dir, 'other'), '--force'], { env, cwd: dir });
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(join(dir, 'other'), 'utf8')).toBe('{}');

    expectOneLineError(await cli(['download', String(pk), 'missing'], { env, cwd: dir }), 1, /job \d+ has no output 'missing' \(outputs: model\.bin \(BLOB\), log \(Compressed<JSON, 8>\)\)/);
    expectOneLineError(await cli(['outputs', '31337'], { env }), 1, /job 31337: Not found\./);
  });
});

describe('errors', () => {
  it('refuses a wrong password with status 77 and one line', async () => {
    const server = await serverWithTemplates();
    // Without the tokens the template import above kept, which would still be good (token-cache.test.ts).
    const result = await cli(['jobs', '--no-token-cache'], { env: serverEnv(server, { UFDL_AGENT_SERVER_PASSWORD: 'not-the-password' }) });
    expectOneLineError(result, 77, /^ufdl-agent: login refused for user 'admin' at http:\/\/127\.0\.0\.1:\d+/);
    expect(result.stderr).not.toContain('not-the-password');
  });

  it('names the URL of an unreachable server, with status 69', async () => {
    const url = 'http://127.0.0.1:9';
    const result = await cli(['jobs'], { env: { UFDL_AGENT_SERVER_URL: url, UFDL_AGENT_SERVER_PASSWORD: 'x' } });
    expectOneLineError(result, 69, /^ufdl-agent: cannot reach the server at http:\/\/127\.0\.0\.1:9: .*ECONNREFUSED/);
    const flag = await cli(['submit', 'shell-hello', '--server', url], { env: { UFDL_AGENT_SERVER_PASSWORD: 'x' } });
    expectOneLineError(flag, 69, /cannot reach the server at http:\/\/127\.0\.0\.1:9/);
  });

  it('reports bad arguments on one line with status 64', async () => {
    const env = { UFDL_AGENT_SERVER_URL: 'http://127.0.0.1:9', UFDL_AGENT_SERVER_PASSWORD: 'x' };
    expectOneLineError(await cli(['watch'], { env }), 64, /^ufdl-agent: watch: missing required argument 'pk'/);
    expectOneLineError(await cli(['watch', 'abc'], { env }), 64, /job pk must be a positive integer, got "abc"/);
    expectOneLineError(await cli(['jobs', '--bogus'], { env }), 64, /^ufdl-agent: jobs: unknown option '--bogus'/);
    expectOneLineError(await cli(['download', '1'], { env }), 64, /missing required argument 'name'/);
    expectOneLineError(await cli(['users', 'add', 'x'], { env }), 64, /no new password: give --password-file FILE or set UFDL_AGENT_NEW_PASSWORD/);
    expectOneLineError(await cli(['jobs', '--server', 'not a url'], { env }), 64, /--server: the URL must be an absolute http\(s\) URL, got "not a url"/);
  });

  it('asks for a password when none is configured (78)', async () => {
    const result = await cli(['jobs'], { env: { UFDL_AGENT_SERVER_URL: 'http://127.0.0.1:9' } });
    expectOneLineError(result, 78, /no password to log in with/);
  });

  it('refuses a value the agent or the client cannot run with as a configuration error (78), which systemd does not restart', async () => {
    const dir = await tempDir('ufdl-cli-config-');
    const env = { UFDL_AGENT_SERVER_URL: 'http://127.0.0.1:9', UFDL_AGENT_SERVER_PASSWORD: 'x', UFDL_AGENT_WORK_DIR: join(dir, 'work'), UFDL_AGENT_STATUS_PORT: '-1' };
    expectOneLineError(await cli(['run'], { env: { ...env, UFDL_AGENT_SLOTS: '-1' } }), 78, /Configuration key 'agent\.slots' from env UFDL_AGENT_SLOTS: must be a non-negative number, got -1/);
    expectOneLineError(await cli(['run'], { env: { ...env, UFDL_AGENT_LOGS_MAX_BYTES: '0' } }), 78, /Configuration key 'logs\.max_bytes' from env UFDL_AGENT_LOGS_MAX_BYTES: must be an integer of at least/);
    // A timeout of 0 failed every call at once: the agent with 70, a command with "cannot reach the server".
    for (const command of [['run'], ['jobs']]) {
      const result = await cli(command, { env: { ...env, UFDL_AGENT_SERVER_TIMEOUT: '0' } });
      expectOneLineError(result, 78, /^ufdl-agent: configuration error: Configuration key 'server.timeout' from env UFDL_AGENT_SERVER_TIMEOUT: expected a positive number, got "0"$/);
    }
  });

  it('refuses a second agent on a journal in use: one line naming the journal and the holder, status 75', async () => {
    const dir = await tempDir('ufdl-cli-journal-');
    const path = join(dir, 'journal.sqlite3');
    // This test process holds the journal, as a running agent would.
    const held = openJournal({ path, serverUrl: 'http://127.0.0.1:9' });
    try {
      const env = { UFDL_AGENT_SERVER_URL: 'http://127.0.0.1:9', UFDL_AGENT_SERVER_PASSWORD: 'x', UFDL_AGENT_JOURNAL: path, UFDL_AGENT_WORK_DIR: join(dir, 'work'), UFDL_AGENT_STATUS_PORT: '-1' };
      const result = await cli(['run'], { env });
      expectOneLineError(result, 75, new RegExp(`^ufdl-agent: The journal ${path.replace(/[.]/g, '\\.')} is in use by pid ${process.pid} on `));
      // The agent's own log says the same in one line, without a stack trace.
      const logged = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(logged.filter((l) => l.holderPid === process.pid && l.journal === path)).toHaveLength(1);
      expect(result.stdout).not.toMatch(/\bat .*\.js:\d+/);
    } finally {
      held.close();
    }
  });

  it('prints --help for every command', async () => {
    const commands = [['submit'], ['jobs'], ['watch'], ['cancel'], ['outputs'], ['download'], ['status'], ['users', 'add'], ['users', 'passwd'], ['templates', 'import'], ['templates', 'list'], ['hwinfo']];
    for (const command of commands) {
      const result = await cli([...command, '--help']);
      expect(result.code, command.join(' ')).toBe(0);
      expect(result.stdout).toContain(`Usage: ufdl-agent ${command.join(' ')}`);
    }
  });
});

describe('users and config', () => {
  it('adds a user and changes its password; the user logs in with the new one', async () => {
    const server = await serverWithTemplates();
    const env = serverEnv(server);
    const dir = await tempDir('ufdl-cli-');
    const file = join(dir, 'pw');
    await writeFile(file, 'first-password-1\n');

    const added = await cli(['users', 'add', 'carol', '--password-file', file], { env });
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/^created user 'carol' \(pk \d+\)\n$/);
    await server.login('carol', 'first-password-1');

    const admin = await cli(['users', 'add', 'dave', '--admin', '--json'], { env: { ...env, UFDL_AGENT_NEW_PASSWORD: 'dave-password-1' } });
    expect(admin.code, admin.stderr).toBe(0);
    expect(JSON.parse(admin.stdout)).toMatchObject({ username: 'dave', is_staff: true });

    const changed = await cli(['users', 'passwd', 'carol'], { env: { ...env, UFDL_AGENT_NEW_PASSWORD: 'second-password-2' } });
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stdout).toBe("password of 'carol' changed\n");
    await expect(server.login('carol', 'first-password-1')).rejects.toThrow(/login failed/);
    await server.login('carol', 'second-password-2');

    // The new user works with the CLI, and may not do admin things.
    const asCarol = serverEnv(server, { UFDL_AGENT_SERVER_USERNAME: 'carol', UFDL_AGENT_SERVER_PASSWORD: 'second-password-2' });
    const jobs = await cli(['jobs', '--json'], { env: asCarol });
    expect(jobs.code, jobs.stderr).toBe(0);
    expectOneLineError(await cli(['users', 'add', 'eve'], { env: { ...asCarol, UFDL_AGENT_NEW_PASSWORD: 'eve-password-1' } }), 77, /permission denied/);

    // One password file reads the same as server.password_file, as --password-file and for a new
    // password: its first line without surrounding white space (an editor's trailing space, a CRLF).
    const sloppy = join(dir, 'pw-sloppy');
    await writeFile(sloppy, ' third-password-3 \r\nsecond line\n');
    const set = await cli(['users', 'passwd', 'carol', '--password-file', sloppy], { env });
    expect(set.code, set.stderr).toBe(0);
    await server.login('carol', 'third-password-3');
    const asCarolFromFile = serverEnv(server, { UFDL_AGENT_SERVER_USERNAME: 'carol', UFDL_AGENT_SERVER_PASSWORD: '', UFDL_AGENT_SERVER_PASSWORD_FILE: sloppy });
    const fromConfig = await cli(['jobs', '--json'], { env: asCarolFromFile });
    expect(fromConfig.code, fromConfig.stderr).toBe(0);
    const fromFlag = await cli(['jobs', '--json', '--user', 'carol', '--password-file', sloppy], { env: serverEnv(server) });
    expect(fromFlag.code, fromFlag.stderr).toBe(0);

    expectOneLineError(await cli(['users', 'add', 'carol'], { env: { ...env, UFDL_AGENT_NEW_PASSWORD: 'again-password' } }), 1, /^ufdl-agent: user 'carol': /);
    expectOneLineError(await cli(['users', 'passwd', 'nobody'], { env: { ...env, UFDL_AGENT_NEW_PASSWORD: 'whatever-123' } }), 1, /^ufdl-agent: user 'nobody': Not found\./);
  });

  it('leaves `config` as it was: the effective values and their sources, password masked', async () => {
    const result = await cli(['config', '--json'], { env: { UFDL_AGENT_SERVER_URL: 'http://example.test:8000', UFDL_AGENT_SERVER_PASSWORD: ADMIN_PASSWORD } });
    expect(result.code, result.stderr).toBe(0);
    const rows = JSON.parse(result.stdout) as { key: string; value: string; source: string }[];
    expect(rows.find((r) => r.key === 'server.url')).toEqual({ key: 'server.url', value: '"http://example.test:8000"', source: 'env UFDL_AGENT_SERVER_URL' });
    expect(rows.find((r) => r.key === 'server.password')?.value).toBe('(set)');
    expect(result.stdout).not.toContain(ADMIN_PASSWORD);
  });
});

describe('hwinfo', () => {
  it('prints the detected hardware as text and JSON without a server', async () => {
    const dir = await tempDir('ufdl-cli-');
    const smi = join(dir, 'nvidia-smi');
    await writeFile(smi, `#!/bin/sh\ncat '${join(ROOT, 'test/fixtures/nvidia-smi/one-gpu.csv')}'\n`);
    await chmod(smi, 0o755);
    const env = { UFDL_AGENT_SERVER_URL: 'http://127.0.0.1:9' };

    const text = await cli(['hwinfo', '--nvidia-smi', smi], { env });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^cpus\s+\d+/m);
    expect(text.stdout).toMatch(/^gpu 0\s+NVIDIA GeForce RTX 3090, 24\.0 GiB, compute 8\.6/m);

    const json = await cli(['hwinfo', '--json', '--nvidia-smi', smi], { env });
    expect(json.code, json.stderr).toBe(0);
    const hw = JSON.parse(json.stdout);
    expect(hw.nvidia.status).toBe('ok');
    expect(hw.gpus).toHaveLength(1);
    expect(hw.gpus[0]).toMatchObject({ index: 0, computeCapability: 8.6, memoryBytes: 24576 * 1024 * 1024 });
    expect(hw.cpus.count).toBeGreaterThan(0);

    const cpuOnly = await cli(['hwinfo', '--json', '--nvidia-smi', join(dir, 'missing-nvidia-smi')], { env });
    expect(cpuOnly.code, cpuOnly.stderr).toBe(0);
    expect(JSON.parse(cpuOnly.stdout)).toMatchObject({ nvidia: { status: 'absent' }, gpus: [] });
  });
});
