/**
 * Job leases (issue 9, item 2): the wrapper stops a child whose lease is not renewed in time, with no
 * agent involved; renewal keeps it running; the watcher leaves nothing behind when the command ends
 * by itself. {@link JobLeases} moves deadlines with the server's answers and says when one lapsed.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { fencedByWrapper, writeLease } from '../../../src/agent/child/lease.js';
import { uptimeSeconds } from '../../../src/agent/child/proc.js';
import { groupMembers } from '../../../src/agent/child/proc.js';
import { spawnJob } from '../../../src/agent/child/spawn.js';
import { ChildSupervisor } from '../../../src/agent/child/supervisor.js';
import { ServerContact } from '../../../src/agent/server-contact.js';
import { JobLeases } from '../../../src/agent/job/leases.js';
import { until } from '../../helpers/wait.js';
import { readText, reapOnFinish, shellSpec, tempJobDir } from './helpers.js';

describe('the wrapper watching a lease', () => {
  it('stops the job by itself once the deadline passes, and says so', async () => {
    const dir = await tempJobDir(41);
    const child = await spawnJob({
      ...shellSpec(dir, 'trap "echo got TERM; exit 7" TERM; while :; do sleep 0.05; done'),
      lease: { deadlineS: uptimeSeconds() + 1, checkEveryS: 0.2, graceS: 2 },
    });
    reapOnFinish(child);
    const exit = await child.exited;
    expect(exit.code).toBe(7);
    expect(fencedByWrapper(dir)).toBe(true);
    const output = await readText(dir.consolePath);
    expect(output).toContain('got TERM\n');
    expect(output).toContain('ufdl-job: the agent did not renew the job lease in time');
    await until(() => groupMembers(child.pid).length === 0, 20_000, 'the group to be empty');
  });

  it('kills a job that ignores SIGTERM after the grace period', async () => {
    const dir = await tempJobDir(42);
    const child = await spawnJob({
      ...shellSpec(dir, "trap '' TERM; while :; do sleep 0.05; done"),
      lease: { deadlineS: uptimeSeconds() + 1, checkEveryS: 0.2, graceS: 1 },
    });
    reapOnFinish(child);
    const exit = await child.exited;
    expect(exit.signal).toBe('SIGKILL');
    expect(fencedByWrapper(dir)).toBe(true);
    await until(() => groupMembers(child.pid).length === 0, 20_000, 'the group to be empty');
  });

  it("ends the job's work outside its group with the outside-kill command, then kills the group", async () => {
    const dir = await tempJobDir(44);
    // Work outside the job's group that ignores SIGTERM, as a container does for its `docker run` client.
    const outside = spawn('/bin/sh', ['-c', "trap '' TERM; while :; do sleep 0.05; done"], { detached: true, stdio: 'ignore' });
    const outsideGone = new Promise<void>((resolve) => outside.once('exit', () => resolve()));
    onTestFinished(() => {
      if (outside.exitCode === null && outside.signalCode === null) process.kill(-outside.pid!, 'SIGKILL');
    });
    const marker = join(dir.root, 'outside-killed');
    const fenceKill = ['/bin/sh', '-c', `kill -KILL -${outside.pid}; echo "it's gone: $1" > '${marker}'`, 'sh', "a 'quoted' $word"];
    const child = await spawnJob({
      ...shellSpec(dir, "trap '' TERM; while :; do sleep 0.05; done"),
      lease: { deadlineS: uptimeSeconds() + 1, checkEveryS: 0.2, graceS: 1 },
      outside: { description: 'outside work', fenceKill, stop: async () => {}, settle: async () => ({}) },
    });
    reapOnFinish(child);
    const exit = await child.exited;
    expect(exit.signal).toBe('SIGKILL');
    await outsideGone;
    // Each word reached the command as it was, quotes and dollar signs included.
    expect(await readText(marker)).toBe("it's gone: a 'quoted' $word\n");
    await until(() => groupMembers(child.pid).length === 0, 20_000, 'the group to be empty');
  });

  it('writes no outside-kill script for a job without a lease', async () => {
    const dir = await tempJobDir(45);
    const child = await spawnJob({
      ...shellSpec(dir, 'echo ran'),
      outside: { description: 'outside work', fenceKill: ['/bin/true'], stop: async () => {}, settle: async () => ({}) },
    });
    reapOnFinish(child);
    expect((await child.exited).code).toBe(0);
    expect(existsSync(dir.outsideKillPath)).toBe(false);
  });

  it('lets the job run while the lease is renewed, and leaves no watcher behind', async () => {
    const dir = await tempJobDir(43);
    const child = await spawnJob({
      ...shellSpec(dir, 'sleep 3; echo done'),
      lease: { deadlineS: uptimeSeconds() + 2, checkEveryS: 0.2, graceS: 1 },
    });
    reapOnFinish(child);
    const supervisor = new ChildSupervisor(child, { killGraceMs: 1000 });
    const renew = setInterval(() => writeLease(dir, uptimeSeconds() + 2), 300);
    const ended = await supervisor.done.finally(() => clearInterval(renew));
    expect(ended.exit.code).toBe(0);
    expect(ended.strays).toBe(0);
    expect(await readText(dir.consolePath)).toBe('done\n');
    expect(existsSync(dir.fencedPath)).toBe(false);
  });

  it('does not watch at all without a lease', async () => {
    const dir = await tempJobDir(44);
    const child = await spawnJob(shellSpec(dir, 'echo plain'));
    reapOnFinish(child);
    expect((await child.exited).code).toBe(0);
    expect(existsSync(dir.leasePath)).toBe(false);
  });
});

describe('JobLeases', () => {
  function setUp() {
    let up = 1000;
    let wall = 5_000_000;
    const clock = { now: () => wall };
    const contact = new ServerContact(clock);
    const lapsed: number[] = [];
    const leases = new JobLeases({
      contact,
      thresholdMs: 10_000,
      killGraceMs: 1500,
      log: { warn: () => {} },
      onLapsed: (pk) => lapsed.push(pk),
      uptime: () => up,
      clock,
    });
    const advance = (s: number) => {
      up += s;
      wall += s * 1000;
    };
    return { contact, leases, lapsed, advance };
  }

  it('grants the last answer plus the threshold and moves it forward with each answer', async () => {
    const { contact, leases, lapsed, advance } = setUp();
    {
      const dir = await tempJobDir(51);
      contact.ok();
      const granted = leases.grant(51, dir);
      expect(granted).toEqual({ deadlineS: 1010, checkEveryS: 0.5, graceS: 2 });
      writeLease(dir, granted.deadlineS);
      advance(4);
      contact.ok();
      expect(await readText(dir.leasePath)).toBe('1014\n');
      advance(9);
      expect(leases.lapsed(51)).toBe(false);
      advance(2);
      expect(leases.lapsed(51)).toBe(true);
      expect(lapsed).toEqual([51]);
      // An answer after the deadline does not revive it: the wrapper is stopping the child.
      contact.ok();
      expect(leases.lapsed(51)).toBe(true);
      expect(await readText(dir.leasePath)).toBe('1014\n');
      leases.release(51);
      expect(leases.lapsed(51)).toBe(false);
      leases.close();
    }
  });

  it("spawns with the latest deadline: a renewal between the grant and the spawn's write stands", async () => {
    const { contact, leases, advance } = setUp();
    const dir = await tempJobDir(52);
    contact.ok();
    const granted = leases.grant(52, dir);
    // The server answers while the spawn is still clearing the files of an earlier attempt.
    advance(4);
    contact.ok();
    expect(await readText(dir.leasePath)).toBe('1014\n');
    const child = await spawnJob({ ...shellSpec(dir, 'sleep 5'), lease: granted });
    reapOnFinish(child);
    // Before, the spawn wrote the grant's deadline (1010): four seconds taken back from the job.
    expect(await readText(dir.leasePath)).toBe('1014\n');
    leases.close();
  });
});
