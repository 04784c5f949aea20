/**
 * The wall clock jumps (NTP steps it, someone runs `date -s`, a VM's clock is corrected) while jobs
 * run. How long the server has been silent must not jump with it: forward, the fence took the jump
 * for an outage and stopped every running job (each then ran again from its start elsewhere); back,
 * it hid a real outage for as long as the jump, while lost-node recovery gave the jobs to other nodes.
 * The fence, the leases and the contact run here on their default clocks, as the agent runs them;
 * only `Date.now` is moved.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { Fence } from '../../../src/agent/health/fence.js';
import { JobLeases } from '../../../src/agent/job/leases.js';
import { uptimeSeconds } from '../../../src/agent/child/proc.js';
import { jobDirPaths } from '../../../src/agent/child/job-dir.js';
import { ServerContact } from '../../../src/agent/server-contact.js';
import { tempDir } from '../../helpers/temp-dir.js';

const HOUR_MS = 3600_000;

/** Move the wall clock by `ms` from now on (the process's monotonic clock is left alone). */
function jumpWallClock(ms: number): void {
  const realNow = Date.now.bind(Date);
  vi.spyOn(Date, 'now').mockImplementation(() => realNow() + ms);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('a wall-clock jump', () => {
  it('forward: is no silence of the server, and fences nothing', () => {
    const contact = new ServerContact();
    const fired: number[] = [];
    const fence = new Fence({ contact, thresholdMs: 60_000, hasRunningJobs: () => true, onFence: (ms) => fired.push(ms) });
    contact.ok();
    jumpWallClock(HOUR_MS);

    expect(contact.silentForMs()).toBeLessThan(60_000);
    expect(fence.check()).toBe(false);
    expect(fired).toEqual([]);
  });

  it('back: hides no real silence of the server from the fence', async () => {
    const contact = new ServerContact();
    const fired: number[] = [];
    const fence = new Fence({ contact, thresholdMs: 200, hasRunningJobs: () => true, onFence: (ms) => fired.push(ms) });
    contact.ok();
    jumpWallClock(-HOUR_MS);
    contact.failed();
    // At least the threshold passes (a loaded machine only makes it longer).
    await sleep(250);

    expect(contact.silentForMs()).toBeGreaterThanOrEqual(200);
    expect(fence.check()).toBe(true);
    expect(fired).toHaveLength(1);
  });

  it("forward: gives a child spawned just then the whole lease, not one already lapsed", async () => {
    const contact = new ServerContact();
    const leases = new JobLeases({ contact, thresholdMs: 60_000, killGraceMs: 1000, onLapsed: () => {}, log: { warn: () => {} } });
    const dir = jobDirPaths(await tempDir('ufdl-clock-jump-'), 'http://ufdl.test', 7);
    contact.ok();
    jumpWallClock(HOUR_MS);

    const granted = leases.grant(7, dir);
    // The boot clock's deadline: the last answer (just now) plus the threshold.
    expect(granted.deadlineS).toBeGreaterThan(uptimeSeconds() + 50);
    expect(leases.lapsed(7)).toBe(false);
    leases.close();
  });
});
