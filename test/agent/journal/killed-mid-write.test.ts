/**
 * Durability under SIGKILL: a child process drives the journal through two job lifecycles (one
 * run to done with two outputs, one handed back), calling every fail point as the agent would.
 * With a point armed through UFDL_AGENT_FAIL_POINTS the child kills itself there; the parent then
 * reopens the journal (taking over the dead child's lock) and must find exactly what an
 * uninterrupted run had written up to that point — every transition before the kill, none after.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAIL_POINTS, type FailPoint } from '../../../src/agent/fail-points.js';
import { openJournal, openReadOnly, type JournalView } from '../../../src/agent/journal/index.js';
import { buildJournal, type BuiltJournal } from '../../fixtures/journal/build.js';
import { startDriver } from '../../fixtures/journal/driver.js';
import { sharedTempDir } from '../../helpers/temp-dir.js';

const SERVER = 'http://127.0.0.1:8000';
const SHA = 'c'.repeat(64);
const MODEL = { name: 'model.zip', type: 'BLOB' };
const LOG = { name: 'log', type: 'Compressed<JSON, 8>' };

interface Step {
  command: { op: 'call'; method: string; args: unknown[] } | { op: 'failPoint'; name: FailPoint };
  /** Fail points this step reaches, in order. */
  fires: FailPoint[];
}

const call = (method: string, args: unknown[], ...fires: FailPoint[]): Step => ({ command: { op: 'call', method, args }, fires });
const point = (name: FailPoint): Step => ({ command: { op: 'failPoint', name }, fires: [name] });

/** What the agent does, in order, with the points it passes. */
const STEPS: Step[] = [
  point('register:after-http'),
  call('saveNode', [{ nodePk: 3, ip: '10.0.0.1', index: 0, hardware: { gpus: 1 } }], 'register:after-write'),
  call('beginAcquire', [{ jobPk: 7, nodePk: 3, templatePk: 2, slot: 0 }], 'acquiring:after-write'),
  point('acquiring:after-http'),
  call('transition', [7, 'acquired'], 'acquired:after-write'),
  point('acquired:after-http'),
  call('transition', [7, 'preparing', { jobDir: '/work/7' }], 'preparing:after-write'),
  point('preparing:after-http'),
  call('transition', [7, 'starting'], 'starting:after-write'),
  point('starting:after-http'),
  point('child:after-spawn'),
  call('transition', [7, 'running', { pid: 4242, pidStart: 'boot:99' }], 'running:after-write'),
  call('record', [7, { lastProgress: 0.5 }]),
  point('running:after-http'),
  point('child:after-exit'),
  call('record', [7, { exitCode: 0, lastProgress: 1 }], 'child-exit:after-write'),
  call('registerOutput', [7, { ...MODEL, path: '/work/7/output/model.zip', size: 10, sha256: SHA }], 'output-pending:after-write'),
  call('registerOutput', [7, { ...LOG, path: '/work/7/log', size: 5, sha256: SHA }], 'output-pending:after-write'),
  call('transition', [7, 'uploading'], 'uploading:after-write'),
  call('markOutput', [7, MODEL, 'uploading'], 'output-uploading:after-write'),
  point('output-uploading:after-http'),
  call('markOutput', [7, MODEL, 'failed', { error: 'ECONNRESET' }], 'output-failed:after-write'),
  call('markOutput', [7, MODEL, 'uploading'], 'output-uploading:after-write'),
  point('output-uploading:after-http'),
  call('markOutput', [7, MODEL, 'uploaded'], 'output-uploaded:after-write'),
  call('markOutput', [7, LOG, 'uploading'], 'output-uploading:after-write'),
  point('output-uploading:after-http'),
  call('markOutput', [7, LOG, 'uploaded'], 'output-uploaded:after-write'),
  call('transition', [7, 'finishing', { finish: { error: null, requeue: false } }], 'finishing:after-write'),
  point('finishing:after-http'),
  call('transition', [7, 'done'], 'done:after-write'),
  // A second job, handed back to the queue after a drain began.
  call('beginAcquire', [{ jobPk: 8, nodePk: 3 }], 'acquiring:after-write'),
  call('transition', [8, 'acquired'], 'acquired:after-write'),
  call('transition', [8, 'releasing', { lastError: 'draining' }], 'releasing:after-write'),
  point('releasing:after-reset-http'),
  point('releasing:after-http'),
  call('transition', [8, 'done'], 'done:after-write'),
];

/** Every reached point as the environment names it (`name`, then `name#2`, …), with its step. */
const CRASHES: { armed: string; step: number }[] = (() => {
  const seen = new Map<string, number>();
  return STEPS.flatMap((step, index) =>
    step.fires.map((name) => {
      const hit = (seen.get(name) ?? 0) + 1;
      seen.set(name, hit);
      return { armed: hit === 1 ? name : `${name}#${hit}`, step: index };
    }),
  );
})();

/** What the journal holds, without timestamps. */
function snapshot(view: JournalView) {
  return {
    nodePk: view.server()?.nodePk ?? null,
    jobs: [7, 8].map((jobPk) => {
      const job = view.get(jobPk);
      if (job === undefined) return null;
      const { createdAt, updatedAt, stateSince, stateTimes, serverUrl, ...rest } = job;
      return {
        ...rest,
        states: Object.keys(stateTimes),
        history: view.history(jobPk).map((t) => `${t.from ?? '-'}>${t.to}`),
        outputs: view.outputs(jobPk).map((o) => `${o.name}:${o.state}:${o.attempts}:${o.lastError ?? ''}`),
      };
    }),
  };
}

let built: BuiltJournal;
let dir: string;
/** snapshots[i]: the journal after STEPS[i] ran. */
const snapshots: ReturnType<typeof snapshot>[] = [];

const crashDir = sharedTempDir('ufdl-journal-crash-');

beforeAll(() => {
  built = buildJournal();
  dir = crashDir();
  // The reference: the same steps in this process, uninterrupted (no point is armed here).
  expect(process.env.UFDL_AGENT_FAIL_POINTS ?? '').toBe('');
  const journal = openJournal({ path: join(dir, 'reference.db'), serverUrl: SERVER });
  for (const { command } of STEPS) {
    if (command.op === 'call') (journal as unknown as Record<string, (...a: unknown[]) => unknown>)[command.method]!(...command.args);
    snapshots.push(snapshot(journal));
  }
  journal.close();
});

afterAll(() => {
  built?.remove();
});

describe('journal under SIGKILL', () => {
  it('should reach every known fail point in the scenario', () => {
    expect(new Set(CRASHES.map((c) => c.armed.split('#')[0]))).toEqual(new Set(FAIL_POINTS));
  });

  it('should run the whole scenario when no point is armed, ending both jobs done', async () => {
    const path = join(dir, 'clean.db');
    const driver = startDriver(built, { UFDL_AGENT_FAIL_POINTS: 'no-such-point' });
    expect((await driver.send({ op: 'open', options: { path, serverUrl: SERVER } })).ok).toBe(true);
    const reply = await driver.send({ op: 'batch', steps: STEPS.map((s) => s.command) });
    expect(reply.error).toBeUndefined();
    await driver.end();
    expect(await driver.exited).toEqual({ code: 0, signal: null });
    const reader = openReadOnly(path, { serverUrl: SERVER });
    expect(snapshot(reader)).toEqual(snapshots.at(-1));
    expect(reader.stats().holder).toBeNull();
    reader.close();
  });

  it.for(CRASHES)('should keep everything written before a kill at $armed', async ({ armed, step }, { expect }) => {
    const path = join(dir, `${armed.replace(/[^a-z0-9-]/gi, '_')}.db`);
    const driver = startDriver(built, { UFDL_AGENT_FAIL_POINTS: ` other:point , ${armed} ` });
    expect((await driver.send({ op: 'open', options: { path, serverUrl: SERVER } })).ok).toBe(true);
    driver.post({ op: 'batch', steps: STEPS.map((s) => s.command) });
    expect(await driver.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(driver.stderr()).toContain(`fail point ${armed.split('#')[0]} (hit ${armed.split('#')[1] ?? 1})`);

    // A reader sees the dead agent's label, and knows it is dead.
    const reader = openReadOnly(path, { serverUrl: SERVER });
    expect(reader.stats().holder).toMatchObject({ pid: driver.pid, alive: false });
    reader.close();

    // The next agent takes the journal over and finds exactly what was written before the kill.
    const journal = openJournal({ path, serverUrl: SERVER });
    try {
      expect(snapshot(journal)).toEqual(snapshots[step]);
      expect(journal.stats().holder).toMatchObject({ pid: process.pid, alive: true });
    } finally {
      journal.close();
    }
  });
});
