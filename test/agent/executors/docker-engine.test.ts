/**
 * The Docker executor on a real engine: each job runs as the agent runs it (prepared, spawned under
 * the wrapper, supervised, its progress followed, its outputs scanned, its finish text written), in a
 * tiny container of one small local image. Without an engine these tests fail, unless
 * UFDL_SKIP_DOCKER_TESTS=1 (see test/helpers/docker.ts).
 */
import { createHash } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { finishErrorText, succeeded } from '../../../src/agent/child/exit-text.js';
import { createJobDir, jobDirPaths, type JobDir } from '../../../src/agent/child/job-dir.js';
import type { RunningChild } from '../../../src/agent/child/running-child.js';
import { spawnJob } from '../../../src/agent/child/spawn.js';
import { ChildSupervisor, type SupervisedExit } from '../../../src/agent/child/supervisor.js';
import { createDockerExecutor, dockerContainerName, earlierAgentId, type DockerOptions } from '../../../src/agent/executors/docker.js';
import { LABEL } from '../../../src/agent/executors/docker-engine.js';
import type { PreparedJob } from '../../../src/agent/executors/types.js';
import { scanOutputs } from '../../../src/agent/outputs/scan.js';
import { JobProgress } from '../../../src/agent/progress/job-progress.js';
import type { ProgressUpdate } from '../../../src/agent/progress/update.js';
import type { JobJson, TemplateJson } from '../../../src/protocol/wire.js';
import { docker, dockerSkipNote, inspect, requireDockerEngine, skipDocker } from '../../helpers/docker.js';
import { until } from '../../helpers/wait.js';
import { readText, reapOnFinish, tempWorkDir } from '../child/helpers.js';
import { job, param, template, typed } from './fixtures.js';

/** One small image for every test; the engine setup builds it locally. */
const IMAGE = process.env.UFDL_DOCKER_TEST_IMAGE || 'local/debian:bookworm';
/** This run's containers carry this agent label, so that the clean-up touches nothing else. */
const AGENT_ID = `ufdl-docker-test-${process.pid}`;
/** Job pks of this run: container names are global on the engine. */
let nextPk = 100_000 + (process.pid % 50_000) * 20;

const SERVER = 'http://ufdl.test:8000';
const OTHER_SERVER = 'http://another.server:8000';
const executorWith = (options: DockerOptions = {}) => createDockerExecutor({ agentId: AGENT_ID, ...options });
/** The container of attempt 1 of job `pk` of this run's agent. */
const containerOf = (pk: number) => dockerContainerName(AGENT_ID, SERVER, pk, 1);

interface Run {
  dir: JobDir;
  prepared: PreparedJob;
  child: RunningChild;
  supervisor: ChildSupervisor;
  reports: ProgressUpdate[];
  done: Promise<SupervisedExit>;
}

/** Prepare and start a job as the agent does (on a CPU slot unless `gpu`). */
async function start(
  j: JobJson,
  t: TemplateJson,
  options: DockerOptions & { gpu?: string; killGraceMs?: number; serverUrl?: string } = {},
): Promise<Run> {
  const dir = await createJobDir(jobDirPaths(await tempWorkDir(), 'http://ufdl.test', j.pk));
  const prepared = executorWith(options).prepare(j, t, { dir, gpu: options.gpu ?? null, serverUrl: options.serverUrl ?? SERVER, nodePk: 7, attempt: 1 });
  const child = await spawnJob(prepared.spec);
  reapOnFinish(child);
  const reports: ProgressUpdate[] = [];
  const progress = new JobProgress({ files: [dir.consolePath], regex: prepared.settings.progressRegex, intervalMs: 100, pollMs: 50, report: (u) => void reports.push(u) });
  progress.start();
  const supervisor = new ChildSupervisor(child, { timeLimitMs: prepared.settings.timeLimitMs, killGraceMs: options.killGraceMs ?? 2000 });
  const done = supervisor.done.then(async (result) => {
    await progress.stop();
    return result;
  });
  return { dir, prepared, child, supervisor, reports, done };
}

/** Prepare and spawn only, as an agent that is then killed would have left it. */
async function spawnOnly(j: JobJson, t: TemplateJson): Promise<{ dir: JobDir; child: RunningChild; name: string }> {
  const dir = await createJobDir(jobDirPaths(await tempWorkDir(), 'http://ufdl.test', j.pk));
  const prepared = executorWith().prepare(j, t, { dir, gpu: null, serverUrl: SERVER, nodePk: 7, attempt: 1 });
  const child = await spawnJob(prepared.spec);
  reapOnFinish(child);
  return { dir, child, name: containerOf(j.pk) };
}

/** What a systemd stop does to the agent's cgroup: the wrapper and the docker CLI die, the container does not. */
async function killClient(child: RunningChild, name: string): Promise<void> {
  await until(async () => (await exists(name)) && (await inspect(name, '{{.State.Status}}')) !== 'created', 60_000, 'the container to start');
  process.kill(-child.pid, 'SIGKILL');
  await child.exited;
}

async function finish(run: Run) {
  const result = await run.done;
  const error = await finishErrorText(result, run.dir, { timeLimitMs: run.prepared.settings.timeLimitMs });
  return { result, error, log: await readText(run.dir.consolePath) };
}

/** A template running `script` with `sh -c` in the test image. */
function shTemplate(script: string, extra: Record<string, ReturnType<typeof param>> = {}): TemplateJson {
  return template('ufdl_agent.Docker', { image: param(IMAGE), body: param(['sh', '-c', script], ['Array<str>']), ...extra });
}

/** Whether a container of this name exists (running or not). */
async function exists(name: string): Promise<boolean> {
  return (await docker(['container', 'ls', '--all', '--filter', `name=^${name}$`, '--format', '{{.Names}}'])).stdout.trim() !== '';
}

describe.skipIf(skipDocker)(`the Docker executor on a real engine${dockerSkipNote}`, () => {
  beforeAll(() => {
    requireDockerEngine();
  });

  afterAll(async () => {
    if (skipDocker) return;
    const left = (await docker(['container', 'ls', '--all', '--quiet', '--filter', `label=${LABEL.agent}=${AGENT_ID}`])).stdout.split('\n').filter(Boolean);
    if (left.length > 0) await docker(['container', 'rm', '--force', ...left]).catch(() => {});
  });

  it('runs a labelled container as the agent user, with the job directory, the contract and the values in its environment', async () => {
    const pk = nextPk++;
    const hostile = `$(touch /tmp/pwned) "; echo injected; '`;
    const t = shTemplate(
      [
        'echo "UFDL-PROGRESS 0.5 {\\"comment\\": \\"half\\"}"',
        'id -u > "$UFDL_OUTPUT_DIR/uid"',
        'pwd > "$UFDL_OUTPUT_DIR/pwd"',
        'printf %s "$HOME" > "$UFDL_OUTPUT_DIR/home"',
        'printf %s "$UFDL_PARAM_greeting" > "$UFDL_OUTPUT_DIR/greeting"',
        'printf %s "$UFDL_JOB_PK:$CUDA_VISIBLE_DEVICES:$UFDL_INPUT_data" > "$UFDL_OUTPUT_DIR/contract"',
        'test -e /tmp/pwned && echo pwned',
        'sleep 2',
        'echo "UFDL-PROGRESS 1"',
      ].join('\n'),
      { greeting: param('', ['str'], false) },
    );
    const run = await start(job(pk, { greeting: typed(hostile) }, { data: typed('images.zip') }), t);
    const name = containerOf(pk);
    await until(() => exists(name), 60_000, 'the container to exist');
    const labels = JSON.parse(await inspect(name, '{{json .Config.Labels}}')) as Record<string, string>;
    expect(labels).toEqual({
      [LABEL.job]: String(pk),
      [LABEL.attempt]: '1',
      [LABEL.node]: '7',
      [LABEL.agent]: AGENT_ID,
      [LABEL.server]: 'http://ufdl.test:8000',
    });
    expect(await inspect(name, '{{.HostConfig.NetworkMode}}')).toBe('bridge');
    const { result, error, log } = await finish(run);

    expect(error).toBeUndefined();
    expect(succeeded(result)).toBe(true);
    expect(log).not.toContain('pwned');
    expect(log).not.toContain('injected');
    expect(run.reports.map((r) => r.progress)).toEqual([0.5, 1]);
    const outputs = await scanOutputs(run.dir.outputDir, {});
    expect(outputs.files.map((f) => f.name).sort()).toEqual(['contract', 'greeting', 'home', 'pwd', 'uid']);
    const out = (file: string) => readText(`${run.dir.outputDir}/${file}`);
    expect((await out('uid')).trim()).toBe(String(process.getuid!()));
    expect((await out('pwd')).trim()).toBe(run.dir.root);
    expect(await out('home')).toBe(run.dir.root);
    expect(await out('greeting')).toBe(hostile);
    expect(await out('contract')).toBe(`${pk}::images.zip`);
    // The outputs are the agent's: it can upload and delete them.
    expect((await stat(`${run.dir.outputDir}/uid`)).uid).toBe(process.getuid!());
    // Settled: inspected, then removed.
    expect(result.outside).toEqual({ explanation: undefined, leftOver: undefined });
    expect(await exists(name)).toBe(false);
  });

  it('runs as another user when told, with no network and limits from the template', async () => {
    const pk = nextPk++;
    const t = shTemplate('echo "uid $(id -u)"; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; sleep 1', {
      docker_memory: param('64m'),
      docker_cpus: param(0.5, ['float']),
    });
    const run = await start(job(pk), t, { user: '4321:4321', network: 'none' });
    const name = containerOf(pk);
    await until(() => exists(name), 60_000, 'the container to exist');
    expect(await inspect(name, '{{.HostConfig.NetworkMode}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}}')).toBe(
      `none ${64 * 1024 ** 2} ${64 * 1024 ** 2} 500000000`,
    );
    const { error, log } = await finish(run);
    expect(error).toBeUndefined();
    expect(log).toContain(String(64 * 1024 ** 2));
    expect(log).toContain('uid 4321\n');
  });

  it('ends a container that runs out of memory with an error that says so', async () => {
    const t = shTemplate('echo filling memory; tail /dev/zero', { docker_memory: param('16m') });
    const { result, error } = await finish(await start(job(nextPk++), t));
    expect(result.outside?.explanation).toMatch(/ran out of memory: it reached its memory limit of 16\.0 MiB .*OOMKilled/);
    expect(error).toMatch(/^The container ran out of memory.*; the command was killed by SIGKILL\n/);
    expect(error).toContain('filling memory');
  });

  it('fails a job whose image is not on the node with the pull policy never, naming the image', async () => {
    const t = template('ufdl_agent.Docker', { image: param('ufdl-test/absent-image:1') });
    const { result, error, log } = await finish(await start(job(nextPk++), t, { pull: 'never' }));
    expect(result.exit.code).toBe(125);
    expect(log).not.toContain('pulling image');
    expect(error).toMatch(/^Docker image ufdl-test\/absent-image:1: image ufdl-test\/absent-image:1 is not on this node, and the pull policy is never; /);
  });

  it('pulls a missing image into the job log, and names the image when the pull fails', async () => {
    const t = template('ufdl_agent.Docker', { image: param('ufdl-test/absent-image:2') });
    const { error, log } = await finish(await start(job(nextPk++), t, { pull: 'missing' }));
    expect(log).toContain('ufdl-docker: pulling image ufdl-test/absent-image:2 (pull policy: missing)');
    expect(error).toMatch(/^Docker image ufdl-test\/absent-image:2: could not pull image ufdl-test\/absent-image:2; the command exited with status 125/);
  });

  it('pulls even a present image with the pull policy always', async () => {
    // No registry is reachable here: the pull of a local-only image fails, which proves it was tried.
    const { error, log } = await finish(await start(job(nextPk++), shTemplate('echo ran'), { pull: 'always' }));
    expect(log).toContain(`ufdl-docker: pulling image ${IMAGE} (pull policy: always)`);
    expect(log).not.toContain('ran\n');
    expect(error).toMatch(new RegExp(`^Docker image ${IMAGE}: could not pull image`));
  });

  it('asks for the slot GPU, and says clearly when the engine has no GPU support', async () => {
    const pk = nextPk++;
    const run = await start(job(pk), shTemplate('echo should not run'), { gpu: '1' });
    expect(run.prepared.spec.argv.join(' ')).toContain('--gpus device=1 ');
    expect(run.prepared.spec.env['CUDA_VISIBLE_DEVICES']).toBe('0');
    const { result, error } = await finish(run);
    if (result.exit.code === 0) return; // an engine with a GPU runtime: nothing to explain
    expect(result.exit.code).toBe(125);
    expect(error).toMatch(/^The container could not be given GPU 1: the Docker engine has no working NVIDIA runtime \(install nvidia-container-toolkit/);
    expect(await exists(containerOf(pk))).toBe(false);
  });

  it('stops the container at the time limit: docker stop, the grace, then kill; nothing is left', async () => {
    const pk = nextPk++;
    const t = shTemplate('trap "" TERM; echo started; while :; do sleep 1; done', { time_limit: param(3, ['float']) });
    const run = await start(job(pk), t, { killGraceMs: 1000 });
    const { result, error } = await finish(run);
    expect(result.stopReason).toBe('time-limit');
    expect(error).toMatch(/^Time limit of 3 s exceeded/);
    expect(await exists(containerOf(pk))).toBe(false);
    expect(result.outside?.leftOver).toBeUndefined();
  });

  it('stops a cancelled container that honours SIGTERM within the grace', async () => {
    const pk = nextPk++;
    const run = await start(job(pk), shTemplate('trap "echo got TERM; exit 0" TERM; echo started; while :; do sleep 1; done'), { killGraceMs: 20_000 });
    await until(async () => (await readText(run.dir.consolePath)).includes('started'), 60_000, 'the container to start');
    const began = Date.now();
    const result = await run.supervisor.stop('cancelled');
    expect(Date.now() - began).toBeLessThan(15_000);
    expect(result.stopReason).toBe('cancelled');
    expect(await readText(run.dir.consolePath)).toContain('got TERM');
    expect(await exists(containerOf(pk))).toBe(false);
  });

  it('follows a container whose client died with the agent to its end, with its log and exit status', async () => {
    const pk = nextPk++;
    const { dir, child, name } = await spawnOnly(job(pk), shTemplate('echo before; sleep 4; echo after; exit 3'));
    await killClient(child, name);
    expect(await inspect(name, '{{.State.Running}}')).toBe('true');

    const spec = await executorWith().follow([SERVER], pk, 1, dir);
    expect(spec).toBeDefined();
    const follower = await spawnJob(spec!);
    reapOnFinish(follower);
    const result = await new ChildSupervisor(follower, { killGraceMs: 2000 }).done;
    expect(result.exit).toMatchObject({ code: 3, signal: null });
    const log = await readText(dir.consolePath);
    expect(log).toContain('the agent restarted; following container');
    expect(log.match(/after/g)).toHaveLength(1);
    expect(await exists(name)).toBe(false);
  });

  it("collects the exit status of a container that ended while no agent followed it, and finds no other agent's containers", async () => {
    const pk = nextPk++;
    const { dir, child, name } = await spawnOnly(job(pk), shTemplate('echo quick; exit 4'));
    await killClient(child, name);
    await until(async () => (await inspect(name, '{{.State.Running}}')) === 'false', 60_000, 'the container to end');
    expect(await createDockerExecutor({ agentId: 'another-agent' }).follow([SERVER], pk, 1, dir)).toBeUndefined();
    expect(await executorWith().follow([SERVER], pk, 2, dir)).toBeUndefined();

    const follower = await spawnJob((await executorWith().follow([SERVER], pk, 1, dir))!);
    reapOnFinish(follower);
    const result = await new ChildSupervisor(follower, { killGraceMs: 2000 }).done;
    expect(result.exit).toMatchObject({ code: 4, signal: null });
    expect(await exists(name)).toBe(false);
  });

  it('does not follow a container that was created but never started (the agent died in between), and removes it', async () => {
    const pk = nextPk++;
    const dir = await createJobDir(jobDirPaths(await tempWorkDir(), 'http://ufdl.test', pk));
    const { spec } = executorWith().prepare(job(pk), shTemplate('echo ran; exit 0'), { dir, gpu: null, serverUrl: SERVER, nodePk: 7, attempt: 1 });
    // What the agent's `docker run` leaves when it is killed between creating the container and
    // starting it: the same container, created and never started.
    const run = spec.argv.indexOf('run');
    await docker(['create', ...spec.argv.slice(run + 1)]);
    const name = containerOf(pk);
    expect(await inspect(name, '{{.State.Status}}')).toBe('created');

    // Following it would report `docker wait`'s 0 for a job that never ran.
    expect(await executorWith().follow([SERVER], pk, 1, dir)).toBeUndefined();
    expect(await exists(name)).toBe(false);
    expect(await readText(dir.consolePath).catch(() => '')).not.toContain('ran');
  });

  it('follows a container an earlier version named without the agent (an upgrade that re-attached under a running job)', async () => {
    const pk = nextPk++;
    const dir = await createJobDir(jobDirPaths(await tempWorkDir(), 'http://ufdl.test', pk));
    const { spec } = executorWith().prepare(job(pk), shTemplate('echo legacy ran; exit 3'), { dir, gpu: null, serverUrl: SERVER, nodePk: 7, attempt: 1 });
    // What the earlier version ran: the same container, named `ufdl-job-<pk>-<attempt>`.
    const legacy = `ufdl-job-${pk}-1`;
    const run = spec.argv.indexOf('run');
    const args = spec.argv.slice(run + 1);
    args[args.indexOf('--name') + 1] = legacy;
    await docker(['run', '--detach', ...args]);
    // Removed at the end, as the agent would once it has reported the job: the start-up sweep's test
    // counts this run's containers.
    onTestFinished(() => docker(['container', 'rm', '--force', legacy]).then(() => undefined));
    await until(async () => (await inspect(legacy, '{{.State.Status}}')) === 'exited', 60_000, 'the legacy container to end');

    const follower = await executorWith().follow([SERVER], pk, 1, dir);
    expect(follower?.argv).toContain(legacy);
    const child = await spawnJob(follower!);
    reapOnFinish(child);
    expect(await child.exited).toMatchObject({ code: 3 });
    // Another agent's container of the same old name is not followed.
    expect(await executorWith({ agentId: `${AGENT_ID}-other` }).follow([SERVER], pk, 1, dir)).toBeUndefined();
  });

  it('follows a container an earlier version named by the agent alone, only for the server whose job it ran', async () => {
    const pk = nextPk++;
    const dir = await createJobDir(jobDirPaths(await tempWorkDir(), OTHER_SERVER, pk));
    const { spec } = executorWith().prepare(job(pk), shTemplate('echo earlier ran; exit 5'), { dir, gpu: null, serverUrl: OTHER_SERVER, nodePk: 7, attempt: 1 });
    // The name the version before gave it: `ufdl-job-<pk>-<attempt>-<digest of the agent>`.
    const earlier = `ufdl-job-${pk}-1-${createHash('sha256').update(AGENT_ID).digest('hex').slice(0, 8)}`;
    const run = spec.argv.indexOf('run');
    const args = spec.argv.slice(run + 1);
    args[args.indexOf('--name') + 1] = earlier;
    await docker(['run', '--detach', ...args]);
    onTestFinished(() => docker(['container', 'rm', '--force', earlier]).then(() => undefined));
    await until(async () => (await inspect(earlier, '{{.State.Status}}')) === 'exited', 60_000, 'the container to end');

    // This agent's job of the same pk and attempt of another server had the same name then: it is
    // not that job's container.
    expect(await executorWith().follow([SERVER], pk, 1, dir)).toBeUndefined();
    const follower = await executorWith().follow([OTHER_SERVER], pk, 1, dir);
    expect(follower?.argv).toContain(earlier);
    const child = await spawnJob(follower!);
    reapOnFinish(child);
    expect(await child.exited).toMatchObject({ code: 5 });
  });

  it("runs a job of one server beside its own container of another server's job of the same pk and attempt", async () => {
    // An agent pointed at another server while its journal keeps an unfinished job of the first
    // (kept to finish once pointed back) is handed a job of the same pk; or one agent's container
    // was left running. Each server's job has a container of its own, and each is followed by its own.
    const pk = nextPk++;
    const other = await start(job(pk), shTemplate('echo other started; while [ ! -e release ]; do sleep 0.2; done; echo other done'), { serverUrl: OTHER_SERVER });
    try {
      await until(async () => (await readText(other.dir.consolePath)).includes('other started'), 60_000, "the other server's container to start");
      const ours = await finish(await start(job(pk), shTemplate('echo ours ran')));
      expect(ours.error).toBeUndefined();
      expect(ours.log).toContain('ours ran');
      expect(await inspect(dockerContainerName(AGENT_ID, OTHER_SERVER, pk, 1), '{{.State.Status}}')).toBe('running');
      // Ours is gone (removed once it ended): the other server's is not taken for it.
      expect(await executorWith().follow([SERVER], pk, 1, other.dir)).toBeUndefined();
      expect((await executorWith().follow([OTHER_SERVER], pk, 1, other.dir))?.argv).toContain(dockerContainerName(AGENT_ID, OTHER_SERVER, pk, 1));

      await writeFile(`${other.dir.root}/release`, '');
      const theirs = await finish(other);
      expect(theirs.error).toBeUndefined();
      expect(theirs.log).toContain('other done');
    } finally {
      await other.supervisor.stop('shutdown');
    }
  });

  it("follows a job's container started under another address of the same server (the addresses were reordered)", async () => {
    // `server.url: [OTHER_SERVER, SERVER]` became `[SERVER, OTHER_SERVER]`: the journal's entry moved
    // to SERVER (aliases.ts), but its container was named and labelled under OTHER_SERVER.
    const pk = nextPk++;
    const dir = await createJobDir(jobDirPaths(await tempWorkDir(), OTHER_SERVER, pk));
    const { spec } = executorWith().prepare(job(pk), shTemplate('echo renamed ran; exit 6'), { dir, gpu: null, serverUrl: OTHER_SERVER, nodePk: 7, attempt: 1 });
    const name = dockerContainerName(AGENT_ID, OTHER_SERVER, pk, 1);
    const run = spec.argv.indexOf('run');
    await docker(['run', '--detach', ...spec.argv.slice(run + 1)]);
    onTestFinished(() => docker(['container', 'rm', '--force', name]).then(() => undefined));
    await until(async () => (await inspect(name, '{{.State.Status}}')) === 'exited', 60_000, 'the container to end');

    expect(await executorWith().follow([SERVER], pk, 1, dir)).toBeUndefined();
    const follower = await executorWith().follow([SERVER, OTHER_SERVER], pk, 1, dir);
    expect(follower?.argv).toContain(name);
    const child = await spawnJob(follower!);
    reapOnFinish(child);
    expect(await child.exited).toMatchObject({ code: 6 });
  });

  it("adopts the agent label an earlier version gave a job's container started under another address of the same server", async () => {
    // A journal of a version that kept no agent identity, whose server's addresses were reordered since
    // (`[OTHER_SERVER, SERVER]` became `[SERVER, OTHER_SERVER]`): the container carries the label of the
    // address it was started under, and the agent must still take the label it was given then.
    const pk = nextPk++;
    const work = await tempWorkDir();
    const earlier = `an-earlier-hostname:${work}`;
    const dir = await createJobDir(jobDirPaths(work, OTHER_SERVER, pk));
    const { spec } = executorWith({ agentId: earlier }).prepare(job(pk), shTemplate('exit 0'), { dir, gpu: null, serverUrl: OTHER_SERVER, nodePk: 7, attempt: 1 });
    const name = dockerContainerName(earlier, OTHER_SERVER, pk, 1);
    await docker(['create', ...spec.argv.slice(spec.argv.indexOf('run') + 1)]);
    onTestFinished(() => docker(['container', 'rm', '--force', name]).then(() => undefined));

    const jobs = [{ jobPk: pk, attempt: 1 }];
    expect(await earlierAgentId(jobs, [SERVER, OTHER_SERVER], work)).toBe(earlier);
    // Not another attempt's, nor another server's, nor another work directory's.
    expect(await earlierAgentId([{ jobPk: pk, attempt: 2 }], [SERVER, OTHER_SERVER], work)).toBeUndefined();
    expect(await earlierAgentId(jobs, [SERVER], work)).toBeUndefined();
    expect(await earlierAgentId(jobs, [SERVER, OTHER_SERVER], `${work}-other`)).toBeUndefined();
  });

  it('removes at start-up the containers of this agent that no unfinished job owns, and only those', async () => {
    const [kept, orphan] = [nextPk++, nextPk++];
    const a = await spawnOnly(job(kept), shTemplate('sleep 60'));
    const b = await spawnOnly(job(orphan), shTemplate('sleep 60'));
    await Promise.all([killClient(a.child, a.name), killClient(b.child, b.name)]);
    // Another server's sweep leaves them.
    expect(await executorWith().sweep([OTHER_SERVER], () => false)).toEqual({ removed: [], failed: [] });
    expect(await exists(a.name)).toBe(true);
    expect(await exists(b.name)).toBe(true);
    // Their server's, its addresses reordered since they started (`server.url` lists another first):
    // they carry the label of the address they were started under.
    const swept = await executorWith().sweep(['http://ufdl-first.test:8000', SERVER], (jobPk, attempt) => jobPk === kept && attempt === 1);
    expect(swept).toEqual({ removed: [b.name], failed: [] });
    expect(await exists(a.name)).toBe(true);
    expect(await exists(b.name)).toBe(false);
  });

  it("runs a job pk and attempt that another agent on the engine also runs in a container of its own, and never touches the other's", async () => {
    // Two agents on one engine (`ufdl-agent@a` and `ufdl-agent@b` of two servers): job pks are
    // per server, so both run a job 1, attempt 1, at the same time.
    const pk = nextPk++;
    const otherAgent = `${AGENT_ID}-other`;
    const otherContainers = async () =>
      (await docker(['container', 'ls', '--all', '--filter', `label=${LABEL.agent}=${otherAgent}`, '--format', '{{.State}}'])).stdout.trim();
    const other = await start(job(pk), shTemplate('echo other started; while [ ! -e release ]; do sleep 0.2; done; echo other done'), {
      agentId: otherAgent,
      serverUrl: 'http://another.server:8000',
    });
    try {
      await until(async () => (await readText(other.dir.consolePath)).includes('other started'), 60_000, "the other agent's container to start");

      const ours = await finish(await start(job(pk), shTemplate('echo ours ran')));
      expect(ours.error).toBeUndefined();
      expect(ours.log).toContain('ours ran');
      expect(await otherContainers()).toBe('running');

      await writeFile(`${other.dir.root}/release`, '');
      const theirs = await finish(other);
      expect(theirs.error).toBeUndefined();
      expect(theirs.log).toContain('other done');
      expect(await otherContainers()).toBe('');
    } finally {
      await other.supervisor.stop('shutdown');
      const left = (await docker(['container', 'ls', '--all', '--quiet', '--filter', `label=${LABEL.agent}=${otherAgent}`])).stdout.split('\n').filter(Boolean);
      if (left.length > 0) await docker(['container', 'rm', '--force', ...left]).catch(() => {});
    }
  });
});
