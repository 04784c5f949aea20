import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { jobDirAt } from '../../../src/agent/child/job-dir.js';
import { ChildSupervisor } from '../../../src/agent/child/supervisor.js';
import { commandExecutor } from '../../../src/agent/executors/command.js';
import { createDockerExecutor, dockerExecutor, isDockerAvailable } from '../../../src/agent/executors/docker.js';
import { launchJob } from '../../../src/agent/executors/launch.js';
import { createExecutorRegistry, ExecutorRegistry } from '../../../src/agent/executors/registry.js';
import { readSettings } from '../../../src/agent/executors/settings.js';
import { shellExecutor } from '../../../src/agent/executors/shell.js';
import type { ExecutorContext } from '../../../src/agent/executors/types.js';
import { readText, reapOnFinish, tempJobDir } from '../child/helpers.js';
import { job, param, prepareError, required, template, typed } from './fixtures.js';

const ctxFor = (dir = jobDirAt('/work/12', 12), gpu: string | null = null): ExecutorContext => ({
  dir,
  gpu,
  serverUrl: 'http://ufdl.example:8000',
  nodePk: 5,
  attempt: 1,
});

describe('ufdl_agent.Command', () => {
  const t = template('ufdl_agent.Command', {
    body: param(['train', '--epochs', '${epochs}', '${+verbose:--verbose}', '--out', '${UFDL_OUTPUT_DIR}/m.bin', '${data}'], [
      'Array<str>',
    ]),
    epochs: param(10, ['int'], false),
    verbose: param(false, ['bool'], false),
    time_limit: param(2.5, ['float']),
  });

  it('builds the argv from the body with the job values, dropping empty entries, with no shell', () => {
    const dir = jobDirAt('/work/12', 12);
    const { spec, settings, parameters } = commandExecutor.prepare(
      job(12, { epochs: typed(3, 'int') }, { data: typed(7, 'JobOutput<BLOB>') }),
      t,
      { ...ctxFor(dir, '2'), inputPaths: { data: '/work/12/input/data.bin' } },
    );
    expect(spec.argv).toEqual(['train', '--epochs', '3', '--out', '/work/12/output/m.bin', '/work/12/input/data.bin']);
    expect(spec.cwd).toBe('/work/12');
    expect(spec.env).toMatchObject({ UFDL_JOB_PK: '12', UFDL_OUTPUT_DIR: '/work/12/output', CUDA_VISIBLE_DEVICES: '2' });
    expect(spec.outside).toBeUndefined();
    expect(settings.timeLimitMs).toBe(2500);
    expect(parameters).toMatchObject({ epochs: 3, verbose: false });
  });

  it('refuses a body that is not an argv, or that expands to nothing', () => {
    const notArgv = template('ufdl_agent.Command', { body: param('echo hi') });
    expect(prepareError(() => commandExecutor.prepare(job(1), notArgv, ctxFor())).subject).toBe('body');
    const empty = template('ufdl_agent.Command', { body: param(['${+f:x}'], ['Array<str>']), f: param(false, ['bool']) });
    expect(prepareError(() => commandExecutor.prepare(job(1), empty, ctxFor())).message).toMatch(/empty command/);
  });

  it('runs for real: the child sees job.json with the resolved parameters and inputs', async () => {
    const dir = await tempJobDir(31);
    const t2 = template('ufdl_agent.Command', {
      body: param(['/bin/cp', '${UFDL_JOB_JSON}', '${UFDL_OUTPUT_DIR}/copy of job.json'], ['Array<str>']),
      lr: param(0.1, ['float'], false),
    });
    const j = job(31, { lr: typed(0.01, 'float') }, { model: typed(4, 'JobOutput<Model>'), note: typed('hi') });
    const { child, prepared } = await launchJob(commandExecutor, j, t2, {
      ...ctxFor(dir),
      inputPaths: { model: `${dir.inputDir}/model.zip` },
    });
    reapOnFinish(child);
    expect(prepared.spec.argv[0]).toBe('/bin/cp');
    expect((await new ChildSupervisor(child, { killGraceMs: 1000 }).done).exit.code).toBe(0);
    const copy = JSON.parse(await readFile(`${dir.outputDir}/copy of job.json`, 'utf8'));
    expect(copy.job.pk).toBe(31);
    expect(copy.template.executor_class).toBe('ufdl_agent.Command');
    expect(copy.parameters).toEqual({ body: t2.parameters['body']!.default, lr: 0.01 });
    expect(copy.inputs).toEqual({
      model: { value: 4, type: 'JobOutput<Model>', path: `${dir.inputDir}/model.zip` },
      note: { value: 'hi', type: 'str' },
    });
    expect(copy.dirs).toEqual({ job: dir.root, input: dir.inputDir, output: dir.outputDir });
  });
});

describe('ufdl_agent.Shell', () => {
  const t = template('ufdl_agent.Shell', {
    body: param('printf "%s|" ${message} ${+loud:LOUD} "$UFDL_JOB_PK"; echo "${HOME:+home}"', ['str']),
    message: param('hello', ['str'], false),
    loud: param(true, ['bool'], false),
  });

  it('passes values in the environment and rewrites ${name} into a reference to its variable', () => {
    const { spec } = shellExecutor.prepare(job(8, { message: typed("it's") }), t, ctxFor());
    expect(spec.argv).toEqual([
      '/bin/sh',
      '-c',
      'printf "%s|" "${UFDL_PARAM_message}" LOUD "$UFDL_JOB_PK"; echo "${HOME:+home}"',
      'ufdl-job-8',
    ]);
    expect(spec.env).toMatchObject({ UFDL_PARAM_message: "it's", UFDL_PARAM_loud: 'true', UFDL_JOB_PK: '12' });
  });

  it('runs for real and a hostile value stays data', async () => {
    const dir = await tempJobDir(8);
    const hostile = '$(touch pwned) `touch pwned2`; touch pwned3 #\ntouch pwned4 \'"';
    const { child } = await launchJob(shellExecutor, job(8, { message: typed(hostile) }), t, ctxFor(dir));
    reapOnFinish(child);
    expect((await child.exited).code).toBe(0);
    expect(await readText(dir.consolePath)).toBe(`${hostile}|LOUD|8|home\n`);
    expect((await readdir(dir.root)).filter((f) => f.startsWith('pwned'))).toEqual([]);
  });

  it('accepts a body given as lines', () => {
    const lines = template('ufdl_agent.Shell', { body: param(['set -e', 'echo ${x}'], ['Array<str>']), x: param('1') });
    expect(shellExecutor.prepare(job(1), lines, ctxFor()).spec.argv[2]).toBe('set -e\necho "${UFDL_PARAM_x}"');
  });

  it('refuses a placement where a value would be code, before and after import', () => {
    const unsafe = template('ufdl_agent.Shell', { body: param("python3 -c 'print(\"${x}\")'"), x: param('1') });
    expect(shellExecutor.check(unsafe)).toEqual({ code: 'UFDL_ERR_AGENT_PARAM_UNSAFE', reason: expect.stringMatching(/\$\{x\} on line 1 is inside single quotes/) });
    const error = prepareError(() => shellExecutor.prepare(job(1), unsafe, ctxFor()));
    expect([error.code, error.subject]).toEqual(['UFDL_ERR_AGENT_PARAM_UNSAFE', 'x']);
    // A job may supply its own body when the template lets it: checked when it runs.
    const open = template('ufdl_agent.Shell', { body: required(['str']), x: param('1') });
    expect(shellExecutor.check(open)).toBeUndefined();
    const evil = job(1, { body: typed('eval "${x}"') });
    expect(prepareError(() => shellExecutor.prepare(evil, open, ctxFor())).code).toBe('UFDL_ERR_AGENT_PARAM_UNSAFE');
  });

  it('accepts only integers in arithmetic, and in parameters declared int', () => {
    const arith = template('ufdl_agent.Shell', { body: param('echo $(( ${n} + 1 ))'), n: param(2, ['int'], false) });
    expect(shellExecutor.prepare(job(1, { n: typed(5, 'int') }), arith, ctxFor()).spec.argv[2]).toBe('echo $(( ${UFDL_PARAM_n} + 1 ))');
    // The reference server does not check values against their types; the agent does, for int.
    const error = prepareError(() => shellExecutor.prepare(job(1, { n: typed('a[$(touch x)]', 'int') }), arith, ctxFor()));
    expect([error.code, error.subject]).toEqual(['UFDL_ERR_AGENT_PARAM_BAD', 'n']);
  });
});

describe('ufdl_agent.Docker', () => {
  const t = template('ufdl_agent.Docker', {
    image: param('registry.example/yolo:${version}'),
    version: param('1.2', ['str'], false),
    body: param(['python', 'train.py', '--out', '${UFDL_OUTPUT_DIR}', '${+half:--half}'], ['Array<str>']),
    half: param(false, ['bool'], false),
  });
  const contractFlags = ['UFDL_JOB_PK', 'UFDL_JOB_DIR', 'UFDL_INPUT_DIR', 'UFDL_OUTPUT_DIR', 'UFDL_JOB_JSON', 'CUDA_VISIBLE_DEVICES'].flatMap((name) => [
    '--env',
    name,
  ]);
  const agentUser = `${process.getuid!()}:${process.getgid!()}`;
  const docker = createDockerExecutor({ agentId: 'host-a:/work' });

  it('pulls by policy, then runs a named, labelled container with the GPU, the job dir mounted and its values by name', () => {
    const { spec } = docker.prepare(job(12, { half: typed(true, 'bool') }), t, { ...ctxFor(jobDirAt('/work/12', 12), '1'), attempt: 3 });
    expect(spec.argv.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(spec.argv.slice(3)).toEqual([
      'ufdl-docker',
      'docker',
      'missing',
      'registry.example/yolo:1.2',
      'run',
      '--name',
      'ufdl-job-12-3-02791218', // 8 hex digits of sha256('host-a:/work\nhttp://ufdl.example:8000'): the agent's and the server's
      '--label',
      'ufdl.job=12',
      '--label',
      'ufdl.attempt=3',
      '--label',
      'ufdl.node=5',
      '--label',
      'ufdl.agent=host-a:/work',
      '--label',
      'ufdl.server=http://ufdl.example:8000',
      '--init',
      '--pull',
      'never',
      '--network',
      'bridge',
      '--user',
      agentUser,
      '--gpus',
      'device=1',
      '--volume',
      '/work/12:/work/12',
      '--workdir',
      '/work/12',
      '--env',
      'HOME=/work/12',
      ...contractFlags,
      '--env',
      'UFDL_PARAM_image',
      '--env',
      'UFDL_PARAM_version',
      '--env',
      'UFDL_PARAM_body',
      '--env',
      'UFDL_PARAM_half',
      'registry.example/yolo:1.2',
      'python',
      'train.py',
      '--out',
      '/work/12/output',
      '--half',
    ]);
    // Inside the container the one GPU it sees is device 0; the values are in the CLI's environment.
    expect(spec.env).toMatchObject({ UFDL_JOB_PK: '12', UFDL_JOB_DIR: '/work/12', CUDA_VISIBLE_DEVICES: '0', UFDL_PARAM_half: 'true' });
    expect(spec.outside?.description).toBe('container ufdl-job-12-3-02791218');
  });

  it('omits --gpus on a CPU slot, hides GPUs, takes the image command when there is no body, and the configured user, network and pull policy', () => {
    const noBody = template('ufdl_agent.Docker', { image: param('alpine:3') });
    const custom = createDockerExecutor({ binary: '/usr/bin/docker', user: '1000:1000', network: 'none', pull: 'never', extraArgs: ['--shm-size', '8g'] });
    const { spec } = custom.prepare(job(4), noBody, ctxFor(jobDirAt('/w/4', 4)));
    const argv = spec.argv.slice(3);
    expect(argv.slice(0, 4)).toEqual(['ufdl-docker', '/usr/bin/docker', 'never', 'alpine:3']);
    expect(argv).not.toContain('--gpus');
    expect(argv.join(' ')).toContain('--network none --user 1000:1000 --volume /w/4:/w/4');
    expect(argv.slice(-3)).toEqual(['--shm-size', '8g', 'alpine:3']);
    expect(spec.env['CUDA_VISIBLE_DEVICES']).toBe('');
  });

  it('limits memory (without swap) and CPUs from the template parameters', () => {
    const limited = template('ufdl_agent.Docker', { image: param('alpine:3'), docker_memory: param('1.5g'), docker_cpus: param('2', ['float']) });
    const argv = docker.prepare(job(4), limited, ctxFor()).spec.argv;
    const bytes = String(1.5 * 1024 ** 3);
    expect(argv.join(' ')).toContain(`--memory ${bytes} --memory-swap ${bytes} --cpus 2 `);
    expect(docker.check(template('ufdl_agent.Docker', { image: param('a'), docker_memory: param('lots') }))).toEqual({
      code: 'UFDL_ERR_AGENT_PARAM_BAD',
      reason: expect.stringMatching(/Parameter 'docker_memory': expected a size/),
    });
    expect(docker.check(template('ufdl_agent.Docker', { image: param('a'), docker_cpus: param(-1, ['float']) }))?.reason).toMatch(/Parameter 'docker_cpus'/);
    const tooSmall = template('ufdl_agent.Docker', { image: param('a'), docker_memory: param('', ['str'], false) });
    expect(prepareError(() => docker.prepare(job(1, { docker_memory: typed('1k') }), tooSmall, ctxFor())).subject).toBe('docker_memory');
  });

  it("refuses a CPU limit below Docker's 0.01 rather than rounding it to --cpus 0, which is no limit at all", () => {
    const tiny = template('ufdl_agent.Docker', { image: param('a'), docker_cpus: param(0.004, ['float']) });
    expect(docker.check(tiny)?.reason).toMatch(/Parameter 'docker_cpus': 0\.004 is below Docker's minimum of 0\.01/);
    const open = template('ufdl_agent.Docker', { image: param('a'), docker_cpus: param(1, ['float'], false) });
    expect(prepareError(() => docker.prepare(job(1, { docker_cpus: typed(0.001, 'float') }), open, ctxFor())).subject).toBe('docker_cpus');
    expect(docker.prepare(job(1, { docker_cpus: typed(0.01, 'float') }), open, ctxFor()).spec.argv.join(' ')).toContain(' --cpus 0.01 ');
  });

  it('refuses a missing image, or one that is not an image reference', () => {
    const noImage = template('ufdl_agent.Docker', { image: param('${tag}'), tag: param('', ['str'], false) });
    expect(prepareError(() => dockerExecutor.prepare(job(1), noImage, ctxFor())).subject).toBe('image');
    const option = prepareError(() => dockerExecutor.prepare(job(1, { tag: typed('--privileged') }), noImage, ctxFor()));
    expect([option.subject, option.message]).toEqual(['image', 'Parameter \'image\': "--privileged" is not a Docker image reference']);
  });

  it('refuses a body that hands a value to a program as code, as Command does', () => {
    const evil = template('ufdl_agent.Docker', { image: param('alpine:3'), body: param(['sh', '-c', '${cmd}'], ['Array<str>']), cmd: param('', ['str'], false) });
    expect(docker.check(evil)).toEqual({ code: 'UFDL_ERR_AGENT_PARAM_UNSAFE', reason: expect.stringMatching(/test-template/) });
  });

  it('is unavailable when `docker version` fails, naming the program', async () => {
    const probe = await isDockerAvailable('/nonexistent/docker');
    expect(probe.available).toBe(false);
    expect(!probe.available && probe.reason).toBe('/nonexistent/docker not found (/nonexistent/docker version --format {{.Server.Version}})');
  });
});

describe('readSettings', () => {
  it('reads the progress regex, declared outputs and time limit', () => {
    const s = readSettings({
      progress_regex: 'Epoch (?<epoch>\\d+)/(?<epochs>\\d+)',
      outputs: '{"model.zip": "Compressed<JSON, 8>", "preds.csv": "BLOB"}',
      time_limit: '90',
    });
    expect(s.progressRegex?.source).toBe('Epoch (?<epoch>\\d+)\\/(?<epochs>\\d+)');
    expect(s.outputTypes).toEqual({ 'model.zip': 'Compressed<JSON, 8>', 'preds.csv': 'BLOB' });
    expect(s.timeLimitMs).toBe(90_000);
    expect(readSettings({})).toEqual({ progressRegex: undefined, outputTypes: {}, timeLimitMs: undefined });
    expect(readSettings({ time_limit: 0, outputs: null, progress_regex: '' }).timeLimitMs).toBeUndefined();
  });

  it.each([
    [{ progress_regex: '(' }, /not a valid regular expression/],
    [{ progress_regex: '(?<epoch>\\d+)' }, /needs a named group/],
    [{ progress_regex: 5 }, /expected a string/],
    [{ outputs: '{' }, /not valid JSON/],
    [{ outputs: ['a'] }, /expected a JSON object/],
    [{ outputs: { '../x': 'BLOB' } }, /contains a path separator/],
    [{ outputs: { m: 'Bad<' } }, /the type of 'm'/],
    [{ outputs: { m: 3 } }, /must be a string/],
    [{ time_limit: -1 }, /expected a number of seconds/],
    [{ time_limit: 'soon' }, /expected a number of seconds/],
  ])('refuses %j', (parameters, message) => {
    const err = prepareError(() => readSettings(parameters));
    expect(err.code).toBe('UFDL_ERR_AGENT_PARAM_BAD');
    expect(err.message).toMatch(message);
  });
});

describe('ExecutorRegistry', () => {
  const registry = new ExecutorRegistry([commandExecutor, shellExecutor], { 'ufdl_agent.Docker': 'no engine' });

  it('finds executors by class', () => {
    expect(registry.executorFor('ufdl_agent.Command')).toBe(commandExecutor);
    expect(registry.executorFor('ufdl_agent.Docker')).toBeUndefined();
    expect(registry.executorFor('ufdl.joblauncher.executors.Foo')).toBeUndefined();
  });

  it('says why a template cannot run, with the agent code', () => {
    const refusal = (t: ReturnType<typeof template>) => registry.canRun(t);
    expect(refusal(template('ufdl_agent.Shell', { body: param('echo') }))).toBeUndefined();
    expect(refusal(template('ufdl_agent.Command', { body: required(['Array<str>']) }))).toBeUndefined();
    expect(refusal(template('x.Y', {}))).toEqual({
      code: 'UFDL_ERR_AGENT_EXECUTOR_UNKNOWN',
      reason: "executor class 'x.Y' is not one this node runs (ufdl_agent.Command, ufdl_agent.Shell)",
    });
    expect(refusal(template('ufdl_agent.Docker', { image: param('a') }))).toEqual({
      code: 'UFDL_ERR_AGENT_EXECUTOR_UNKNOWN',
      reason: 'executor ufdl_agent.Docker is not available on this node: no engine',
    });
    expect(refusal(template('ufdl_agent.Command', {}))).toEqual({ code: 'UFDL_ERR_AGENT_PARAM_MISSING', reason: expect.stringMatching(/declares no 'body' parameter/) });
    expect(refusal(template('ufdl_agent.Command', { body: param('echo') }))).toEqual({ code: 'UFDL_ERR_AGENT_PARAM_BAD', reason: expect.stringMatching(/is not an argv/) });
    expect(refusal(template('ufdl_agent.Shell', { body: param(3, ['int']) }))).toEqual({ code: 'UFDL_ERR_AGENT_PARAM_BAD', reason: expect.stringMatching(/is not a script/) });
    expect(refusal(template('ufdl_agent.Shell', { body: param('x'), time_limit: param('never') }))).toEqual({
      code: 'UFDL_ERR_AGENT_PARAM_BAD',
      reason: expect.stringMatching(/Parameter 'time_limit'/),
    });
    expect(refusal(template('ufdl_agent.Shell', { body: param('x'), 'a-b': param('1'), a_b: param('2') }))).toEqual({
      code: 'UFDL_ERR_AGENT_PARAM_UNSAFE',
      reason: expect.stringMatching(/^template 'test-template': /),
    });
  });

  it('offers Docker only when asked or when an engine answers', async () => {
    const off = await createExecutorRegistry({ docker: false });
    expect(off.describe()).toEqual({
      available: ['ufdl_agent.Command', 'ufdl_agent.Shell'],
      unavailable: { 'ufdl_agent.Docker': 'disabled by configuration' },
    });
    const on = await createExecutorRegistry({ docker: true });
    expect(on.executorFor('ufdl_agent.Docker')).toBeDefined();
    const auto = await createExecutorRegistry({ docker: 'auto', dockerOptions: { binary: '/nonexistent/docker' } });
    expect(auto.canRun(template('ufdl_agent.Docker', { image: param('a') }))?.reason).toMatch(/\/nonexistent\/docker not found/);
  });
});
