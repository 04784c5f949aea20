/**
 * The client against the real embedded server: login and tokens, Node-Id, the job calls the agent
 * makes in the reference worker's order, error kinds as the server really answers them, outputs
 * whose types need percent-encoding, capabilities and the wait header.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pollFilter } from '../../src/protocol/filter.js';
import { ADMIN_USER } from '../helpers/server.js';
import { failure, startWorld, WORKER_PASSWORD } from './setup.js';
import { tempDir } from '../helpers/temp-dir.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('login and tokens', () => {
  it('should log in, verify its token, and learn its own user record', async () => {
    const world = await startWorld();
    const worker = await world.worker('alice');
    const tokens = await worker.obtain();
    expect(tokens.access.split('.')).toHaveLength(3);
    await expect(worker.verify()).resolves.toBe(true);
    await expect(worker.verify('not.a.token')).resolves.toBe(false);
    const me = await worker.getUser('alice');
    expect(me).toMatchObject({ username: 'alice', is_staff: false });
    expect(await worker.refresh()).not.toBe(tokens.access);
  });

  it('should answer a wrong password with kind auth (401), once', async () => {
    const world = await startWorld();
    const client = world.client({ password: 'wrong-password' });
    const err = await failure(client.listJobs());
    expect(err.kind).toBe('auth');
    expect(err.status).toBe(401);
    expect(err.detail).toBe('No active account found with the given credentials');
    expect(client.auth.getStatus()).toMatchObject({ loggedIn: false, obtains: 0 });
  });

  it('should refresh ahead of expiry with short access tokens, never meeting a 401', async () => {
    // 3-s tokens count as 2 s (whole-second claims); refreshed when less than 1 s (half) remains.
    const world = await startWorld({ accessTokenSeconds: 3 });
    const worker = await world.worker();
    await worker.listJobs();
    await worker.listJobs();
    expect(worker.auth.getStatus()).toMatchObject({ obtains: 1, refreshes: 0 });
    await sleep(1200);
    await worker.listJobs();
    expect(worker.auth.getStatus()).toMatchObject({ obtains: 1, refreshes: 1, refreshesAhead: 1, unauthorized: 0 });
    await sleep(3200); // the access token has expired meanwhile
    await worker.listJobs();
    expect(worker.auth.getStatus()).toMatchObject({ obtains: 1, refreshes: 2, unauthorized: 0 });
  });

  it('should log in again when the refresh token has expired too', async () => {
    const world = await startWorld({ accessTokenSeconds: 2, refreshTokenSeconds: 4 });
    const worker = await world.worker();
    await worker.listJobs();
    await sleep(1300); // access token due: refreshed with the refresh token
    await worker.listJobs();
    expect(worker.auth.getStatus()).toMatchObject({ obtains: 1, refreshes: 1, unauthorized: 0 });
    await sleep(3000); // both expired: a new login
    await worker.listJobs();
    expect(worker.auth.getStatus()).toMatchObject({ obtains: 2, refreshes: 1, unauthorized: 0 });
  });

  it('should read the password from a file', async () => {
    const world = await startWorld();
    await world.admin.createUser({ username: 'bob', password: WORKER_PASSWORD });
    const dir = await tempDir('ufdl-client-');
    await writeFile(join(dir, 'password'), `${WORKER_PASSWORD}\n`, { mode: 0o600 });
    const bob = world.client({ username: 'bob', password: undefined, passwordFile: join(dir, 'password') });
    await expect(bob.getUser('bob')).resolves.toMatchObject({ username: 'bob' });
  });
});

describe('nodes', () => {
  it('should register, send Node-Id, heartbeat, patch itself and be told when its Node-Id is bad', async () => {
    const world = await startWorld();
    const worker = await world.worker();
    const hardware = await worker.listHardware();
    expect(hardware.length).toBeGreaterThan(0);
    const node = await worker.createNode({ ip: '10.1.2.3', index: 0, cpu_mem: 1024 ** 3, hardware_generation: hardware[0]!.pk });
    expect(node.current_job).toBeNull();
    worker.setNodePk(node.pk);
    await worker.ping();
    const seen = await worker.getNode(node.pk);
    expect(seen.last_seen).not.toBeNull();
    const patched = await worker.patchNode(node.pk, { gpu_mem: 4096, driver_version: '550.1' });
    expect(patched).toMatchObject({ gpu_mem: 4096, driver_version: '550.1' });
    const found = await worker.listNodes({ expressions: [{ type: 'and', sub_expressions: [{ type: 'exact', field: 'ip', value: '10.1.2.3' }, { type: 'exact', field: 'index', value: 0 }] }] });
    expect(found.map((n) => n.pk)).toEqual([node.pk]);

    worker.setNodePk(99_999);
    const err = await failure(worker.ping());
    expect(err.kind).toBe('bad-node-id');
    expect(err.status).toBe(400);
    // Registering again works without the bad header (create never sends Node-Id).
    const again = await worker.createNode({ ip: '10.1.2.4', index: 0, cpu_mem: 1024 ** 3 });
    expect(again.pk).not.toBe(node.pk);
  });

  it('should refuse a duplicate node with kind bad-request, sent once', async () => {
    const world = await startWorld();
    const worker = await world.worker();
    await worker.createNode({ ip: '10.1.2.3', index: 1, cpu_mem: 1 });
    expect((await failure(worker.createNode({ ip: '10.1.2.3', index: 1, cpu_mem: 1 }))).kind).toBe('bad-request');
  });
});

describe('a job, as the agent runs it', () => {
  it('should poll, acquire, start, progress, upload, finish, and map the refusals to kinds', async () => {
    const world = await startWorld();
    const worker = await world.worker();
    const other = await world.worker();
    const nodePk = await world.register(worker);
    await world.register(other);
    const pk = await world.createJob('first');
    const second = await world.createJob('second');

    const queue = await worker.listJobs(pollFilter());
    expect(queue.map((j) => j.pk)).toEqual([pk, second]);
    const template = await worker.getTemplate(queue[0]!.template.pk);
    expect(template).toMatchObject({ name: 'client-test', executor_class: 'ufdl_agent.Command' });
    expect((await worker.listTemplates()).map((t) => t.pk)).toContain(template.pk);

    const dir = await tempDir('ufdl-client-');
    await writeFile(join(dir, 'early'), 'x');
    expect((await failure(worker.uploadOutput(pk, 'early', 'BLOB', join(dir, 'early')))).kind).toBe('forbidden'); // not acquired yet

    const acquired = await worker.acquireJob(pk);
    expect(acquired.node).toBe(nodePk);
    await expect(worker.acquireJob(pk)).resolves.toMatchObject({ node: nodePk }); // idempotent for the same node
    expect((await failure(other.acquireJob(pk))).kind).toBe('taken');
    expect((await failure(worker.uploadOutput(pk, 'early', 'BLOB', join(dir, 'early')))).kind).toBe('not-started');

    const started = await worker.startJob(pk);
    expect(started.start_time).not.toBeNull();
    expect((await worker.checkLanded('start', pk)).landed).toBe(true);
    await worker.acquireJob(second);
    expect((await failure(worker.startJob(second))).kind).toBe('node-busy');
    await worker.releaseJob(second);

    await worker.progressJob(pk, 0.25, { epoch: 1 });
    await worker.progressJob(pk, 1);

    const type = 'Compressed<JSON, 8>';
    const logFile = join(dir, 'log.zip');
    await writeFile(logFile, 'pretend zip');
    const { output } = await worker.uploadOutput(pk, 'log', type, logFile);
    expect(output).toMatchObject({ job: pk, name: 'log', type });
    expect((await failure(worker.uploadOutput(pk, 'log', type, logFile))).kind).toBe('duplicate-output');
    const { output: spaced } = await worker.uploadOutput(pk, 'my model.bin', "Model<Domain<'Image Classification'>, Framework<'x', '1'>>", logFile);
    expect(spaced.name).toBe('my model.bin');
    await expect(worker.getOutputInfo(pk, 'log', type)).resolves.toMatchObject({ pk: output.pk, type });
    expect((await failure(worker.getOutputInfo(pk, 'log', 'BLOB'))).kind).toBe('bad-request');

    const finished = await worker.finishJob(pk);
    expect(finished.end_time).not.toBeNull();
    expect(finished.error_reason).toBeNull();
    expect(finished.outputs.map((o) => [o.name, o.type]).sort()).toEqual([
      ['log', type],
      ['my model.bin', "Model<Domain<'Image Classification'>, Framework<'x', '1'>>"],
    ]);
    expect((await worker.checkLanded('finish', pk)).landed).toBe(true);
    expect((await failure(worker.progressJob(pk, 0.5))).kind).toBe('phase');

    const down = join(dir, 'down');
    await worker.downloadOutput(pk, 'log', type, down);
    expect(await readFile(down, 'utf8')).toBe('pretend zip');
    await worker.downloadJobOutputByPk(output.pk!, `${down}2`);
    expect(await readFile(`${down}2`, 'utf8')).toBe('pretend zip');
    const listed = await worker.listJobOutputs({ expressions: [{ type: 'exact', field: 'job', value: pk }] });
    expect(listed.map((o) => o.name).sort()).toEqual(['log', 'my model.bin']);
  });

  it('should fail a job with an error, reset it and release it (the clean-up path)', async () => {
    const world = await startWorld();
    const worker = await world.worker();
    const pk = await world.startedJob(worker);
    const errored = await worker.finishJob(pk, { error: 'Node shutting down' });
    expect(errored.error_reason).toBe('Node shutting down');
    const reset = await worker.resetJob(pk);
    expect(reset.start_time).toBeNull();
    expect((await worker.checkLanded('reset', pk)).landed).toBe(true);
    const released = await worker.releaseJob(pk);
    expect(released.node).toBeNull();
    expect((await worker.checkLanded('release', pk)).landed).toBe(true);
  });

  it('should let an admin cancel and abort, and a non-admin be refused', async () => {
    const world = await startWorld();
    const worker = await world.worker();
    const pk = await world.startedJob(worker);
    expect((await failure(worker.abortJob(pk))).kind).toBe('forbidden');
    const cancelled = await world.admin.cancelJob(pk);
    expect(cancelled.is_cancelled).toBe(true);
    // The node still working the cancelled job clears its current_job with a silent finish.
    await worker.finishJob(pk, { error: 'cancelled' });
    const other = await world.createJob();
    await worker.acquireJob(other);
    await worker.startJob(other);
    await expect(world.admin.abortJob(other)).resolves.toMatchObject({ node: null, start_time: null });
  });
});

describe('capabilities and wake-up', () => {
  it('should read the capabilities of the embedded server', async () => {
    const world = await startWorld();
    const caps = await world.admin.getCapabilities();
    expect(caps).toMatchObject({ server: 'ufdl-agent', extensions: { wait: { max_seconds: 60 } } });
  });

  it('should see null capabilities on a server without extensions, and not wait there', async () => {
    const world = await startWorld({ extensions: false });
    const worker = await world.worker();
    await expect(worker.getCapabilities()).resolves.toBeNull();
    const started = Date.now();
    await expect(worker.listJobs(pollFilter(), { waitSeconds: 5 })).resolves.toEqual([]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('should return a waiting list soon after a job is created', async () => {
    const world = await startWorld();
    const worker = await world.worker();
    await world.register(worker);
    await world.template();
    const waiting = worker.listJobs(pollFilter(), { waitSeconds: 20 });
    await sleep(300);
    const created = Date.now();
    const pk = await world.createJob();
    const jobs = await waiting;
    expect(jobs.map((j) => j.pk)).toEqual([pk]);
    expect(Date.now() - created).toBeLessThan(2000);
  });
});

describe('users', () => {
  it('should create a user as admin and refuse it to a non-admin', async () => {
    const world = await startWorld();
    const user = await world.admin.createUser({ username: 'carol', password: WORKER_PASSWORD, email: 'c@example.org' });
    expect(user).toMatchObject({ username: 'carol', is_staff: false });
    const carol = world.client({ username: 'carol', password: WORKER_PASSWORD });
    expect((await failure(carol.createUser({ username: 'dave', password: WORKER_PASSWORD }))).kind).toBe('forbidden');
    expect((await failure(carol.getUser(ADMIN_USER))).kind).toBe('forbidden');
    expect((await world.admin.listUsers()).map((u) => u.username)).toEqual([ADMIN_USER, 'carol']);
  });

  it('should change a password, after which the old one is refused', async () => {
    const world = await startWorld();
    await world.admin.createUser({ username: 'erin', password: WORKER_PASSWORD });
    const changed = await world.admin.setPassword('erin', 'a-new-password-1');
    expect(changed.username).toBe('erin');
    expect((await failure(world.client({ username: 'erin', password: WORKER_PASSWORD }).obtain())).kind).toBe('auth');
    await expect(world.client({ username: 'erin', password: 'a-new-password-1' }).obtain()).resolves.toHaveProperty('access');
  });
});
