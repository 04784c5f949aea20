/**
 * The jobs in flight, with real parts: an embedded server on loopback, a journal, the executors, the
 * slots and their nodes, and real children. A job its runner is still leaving (its journal entry is
 * closed, its job directory being removed) may be on offer again already: a requeued job is released
 * before its entry is closed. Claimed again then, a second run would make the job's directory while
 * the first one removes it. The jobs in flight must let it go by ('lost'), sending nothing, and claim
 * it like any other job once the first runner has left.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { jobDirPaths } from '../../../src/agent/child/job-dir.js';
import { createExecutorRegistry } from '../../../src/agent/executors/registry.js';
import type { ClaimOutcome } from '../../../src/agent/job/claim.js';
import type { JobEvents } from '../../../src/agent/job/context.js';
import { JobsInFlight } from '../../../src/agent/job/in-flight.js';
import { openJournal, type Journal } from '../../../src/agent/journal/index.js';
import { createAgentMetrics } from '../../../src/agent/metrics.js';
import { resolveAgentOptions } from '../../../src/agent/options.js';
import type { JournalPort } from '../../../src/agent/ports.js';
import { SlotNodes } from '../../../src/agent/slots/nodes.js';
import { planSlots, Slots, type SlotSpec } from '../../../src/agent/slots/slots.js';
import { UfdlClient } from '../../../src/client/api.js';
import { createJob, downloadOutput, fastAgentOptions, getJob, importTemplate, readRuns, shellTemplate, testLogger, until } from '../../helpers/agent.js';
import { ADMIN_PASSWORD, ADMIN_USER, startTestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

/** The journal, telling `onDone` right after it closed a job's entry (as the runner goes on to remove its directory). */
function journalTellingDone(journal: Journal, onDone: (jobPk: number) => void): JournalPort {
  return new Proxy(journal, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function') return value;
      if (property !== 'transition') return value.bind(target);
      return (...args: Parameters<Journal['transition']>) => {
        const result = target.transition(...args);
        if (args[1] === 'done') onDone(args[0]);
        return result;
      };
    },
  });
}

describe('JobsInFlight', () => {
  it('lets a job go by while its runner is still leaving (no acquire, nothing journalled, no directory), and claims it once the runner has left', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-in-flight-');
    const runs = join(dir, 'runs.txt');
    const gate = join(dir, 'go');
    // Each run appends "<pk> <pid>" to `runs`, writes its pid to an output, and waits for the gate.
    const template = await importTemplate(
      server,
      shellTemplate('in-flight', `echo "$UFDL_JOB_PK $$" >> ${runs}\necho "$$" > "$UFDL_OUTPUT_DIR/run.txt"\nwhile [ -d ${dir} ] && [ ! -e ${gate} ]; do sleep 0.05; done\n`),
    );
    onTestFinished(() => writeFile(gate, ''));
    const pk = await createJob(server, template);
    const acquired: string[] = [];
    server.onRequest((request) => {
      if (request.method === 'GET' && request.url === `/v1/jobs/${pk}/acquire`) acquired.push(String(request.headers['node-id']));
    });

    // The parts as the agent wires them: two slots, each its own node, sharing one login.
    const options = resolveAgentOptions(fastAgentOptions(server, dir, { slots: 2 }));
    const root = new UfdlClient({ serverUrl: server.url, username: ADMIN_USER, password: ADMIN_PASSWORD });
    const nodes = new SlotNodes({ root, ip: '127.0.0.1', hardware: { cpuMemBytes: 1024 ** 3, driverVersion: null, gpus: [] }, generations: [], log: testLogger() });
    const journal = openJournal({ path: join(dir, 'journal.sqlite3'), serverUrl: server.url });
    onTestFinished(() => {
      nodes.close();
      root.close();
      journal.close();
    });
    const slots = new Slots(planSlots(2, [], 0));
    await nodes.registerAll(slots.specs());
    const apiOf = (slot: SlotSpec) => nodes.get(slot.index)!.api;

    // While the first run leaves, the job is offered again through the other slot: right after its
    // entry is closed (its directory is being removed), and when it says how it left (the last step).
    let offerAgain = true;
    const offers: Promise<ClaimOutcome>[] = [];
    const seenThen: { directory: boolean; state: string | undefined; tracked: boolean }[] = [];
    const offer = () => {
      if (!offerAgain) return;
      seenThen.push({ directory: existsSync(jobDirPaths(options.workDir, options.serverUrl, pk).root), state: journal.get(pk)?.state, tracked: jobs.get(pk) !== undefined });
      offers.push(jobs.claim(other, job, tpl, apiOf(other)));
    };
    const finished: JobEvents['finished'][0][] = [];
    const jobs: JobsInFlight = new JobsInFlight({
      slots,
      // Told as the entry closes; the offer waits for the end of that step (a microtask), when the
      // runner has begun to remove the directory and waits for it.
      journal: journalTellingDone(journal, (done) => done === pk && queueMicrotask(offer)),
      executor: await createExecutorRegistry({ docker: false }),
      options,
      liveLog: null,
      useWebSocket: false,
      leases: undefined,
      log: testLogger(),
      metrics: createAgentMetrics({ defaultMetrics: false }),
      emit: (event, ...args) => {
        if (event !== 'finished') return;
        finished.push(args[0] as JobEvents['finished'][0]);
        offer();
      },
      accepting: () => true,
      skip: () => {},
      journalWriteFailed: () => {},
      onSlotsChanged: () => {},
    });

    const first = slots.tryAcquire()!;
    const job = await apiOf(first).getJob(pk);
    const tpl = await apiOf(first).getTemplate(template);
    expect(await jobs.claim(first, job, tpl, apiOf(first))).toBe('claimed');
    await until(async () => (await readRuns(runs)).length === 1, 30_000, 'the first run to start');
    const other = slots.tryAcquire()!;

    // Stopped by the fence: finished with an error, reset and released (on offer again), then done.
    const runner = jobs.get(pk)!;
    runner.stop('fenced');
    expect(await runner.done).toBe('fenced');
    offerAgain = false;
    expect(finished).toEqual([{ jobPk: pk, slot: first.index, outcome: 'fenced', error: expect.stringMatching(/lost contact/) as unknown }]);

    // Both offers were let go by, and sent nothing. They came while the runner was still there, its
    // entry closed: the first while its directory was still being removed, the second after.
    expect(await Promise.all(offers)).toEqual(['lost', 'lost']);
    expect(seenThen).toEqual([
      { directory: true, state: 'done', tracked: true },
      { directory: false, state: 'done', tracked: true },
    ]);
    expect(acquired).toEqual([String(apiOf(first).nodePk)]);
    expect(journal.get(pk)).toMatchObject({ state: 'done', attempts: 1 });
    expect(existsSync(jobDirPaths(options.workDir, options.serverUrl, pk).root)).toBe(false);
    const onOffer = await getJob(server, pk);
    expect(onOffer).toMatchObject({ node: null, start_time: null, end_time: null });

    // The runner has left (its slot with it): the job is claimed like any other and runs to its end.
    expect(jobs.get(pk)).toBeUndefined();
    expect(slots.busy).toBe(1);
    slots.release(other.index); // as the poll loop does after a job it did not claim
    const again = slots.tryAcquire()!;
    await writeFile(gate, '');
    expect(await jobs.claim(again, await apiOf(again).getJob(pk), tpl, apiOf(again))).toBe('claimed');
    expect(await jobs.get(pk)!.done).toBe('success');
    expect(acquired).toEqual([String(apiOf(first).nodePk), String(apiOf(again).nodePk)]);
    expect(journal.get(pk)).toMatchObject({ state: 'done', attempts: 2 });
    // Two runs, one after the other; the job reports the second's output.
    const lines = await readRuns(runs);
    expect(lines.map((l) => Number(l.split(' ')[0]))).toEqual([pk, pk]);
    const done = await getJob(server, pk);
    expect(done.error_reason).toBeNull();
    expect(done.node).toBe(apiOf(again).nodePk);
    expect((await downloadOutput(server, pk, 'run.txt')).toString().trim()).toBe(lines[1]!.split(' ')[1]);
  }, 60_000);
});
