/**
 * The child runner with real processes: `/bin/sh`, process groups, signals and `/proc`.
 */
import { readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { attach } from '../../../src/agent/child/attach.js';
import { childEnv, contractEnv } from '../../../src/agent/child/env.js';
import { finishErrorText, succeeded } from '../../../src/agent/child/exit-text.js';
import { groupMembers, readProcStat } from '../../../src/agent/child/proc.js';
import type { OutsideWork } from '../../../src/agent/child/running-child.js';
import { spawnJob } from '../../../src/agent/child/spawn.js';
import { stopGroup } from '../../../src/agent/child/stop-group.js';
import { ChildSupervisor } from '../../../src/agent/child/supervisor.js';
import { readExitStatus } from '../../../src/agent/child/wrapper.js';
import { eventually, until } from '../../helpers/wait.js';
import { readText, reapOnFinish, shellSpec, tempJobDir, waitForOutput } from './helpers.js';

/** Every process (zombies included) whose group or session is `pgid`, read straight from /proc. */
function anyoneOf(pgid: number): number[] {
  return groupMembers(pgid, { includeZombies: true })
    .filter((p) => p.state !== 'Z')
    .map((p) => p.pid);
}

describe('spawnJob', () => {
  it('gives the child the contract environment, its job dir as cwd, and no agent secrets', async () => {
    const dir = await tempJobDir(42);
    const spec = shellSpec(dir, 'env > "$UFDL_JOB_DIR/env.txt"; pwd > "$UFDL_JOB_DIR/pwd.txt"');
    // The agent's own secrets must not leak into a job, even though the job inherits PATH etc.
    const base = { ...process.env, UFDL_AGENT_PASSWORD: 'secret', KEEP_ME: 'yes' };
    spec.env = childEnv(contractEnv(dir, '1'), {}, base);
    const child = await spawnJob(spec);
    reapOnFinish(child);
    expect(await child.exited).toEqual({ code: 0, signal: null, source: 'wrapper' });

    const env = Object.fromEntries(
      (await readFile(`${dir.root}/env.txt`, 'utf8'))
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env).toMatchObject({
      UFDL_JOB_PK: '42',
      UFDL_JOB_DIR: dir.root,
      UFDL_INPUT_DIR: dir.inputDir,
      UFDL_OUTPUT_DIR: dir.outputDir,
      UFDL_JOB_JSON: dir.jobJsonPath,
      CUDA_VISIBLE_DEVICES: '1',
      KEEP_ME: 'yes',
    });
    expect(env).not.toHaveProperty('UFDL_AGENT_PASSWORD');
    expect((await readFile(`${dir.root}/pwd.txt`, 'utf8')).trim()).toBe(dir.root);
  });

  it('sets CUDA_VISIBLE_DEVICES to the empty string on a CPU slot', async () => {
    const dir = await tempJobDir();
    const child = await spawnJob(shellSpec(dir, 'printf "[%s]" "${CUDA_VISIBLE_DEVICES-unset}"'));
    reapOnFinish(child);
    await child.exited;
    expect(await readText(dir.consolePath)).toBe('[]');
  });

  it('runs the child in its own session and group, stdin on /dev/null, output in files', async () => {
    const dir = await tempJobDir();
    // `cat` returns at once only if stdin is at end of file.
    const child = await spawnJob(shellSpec(dir, 'cat; echo ready; echo oops >&2; sleep 30'));
    reapOnFinish(child);
    await waitForOutput(dir, 'ready');

    const stat = readProcStat(child.pid)!;
    expect(stat.pgid).toBe(child.pid);
    expect(stat.sid).toBe(child.pid);
    expect(stat.startTime).toBe(child.startTime);
    expect(Math.abs(child.startedAtMs - Date.now())).toBeLessThan(120_000);
    expect(readlinkSync(`/proc/${child.pid}/fd/0`)).toBe('/dev/null');
    // Files, not pipes: they keep working when the agent is gone.
    expect(readlinkSync(`/proc/${child.pid}/fd/1`)).toBe(dir.consolePath);
    expect(readlinkSync(`/proc/${child.pid}/fd/2`)).toBe(dir.consolePath);
    // stdout and stderr share one file, in the order they were written.
    await until(async () => (await readText(dir.consolePath)) === 'ready\noops\n', 20_000, 'stdout, then stderr');
  });

  it('appends to the logs of an earlier attempt and ignores its stale exit status', async () => {
    const dir = await tempJobDir();
    const first = await spawnJob(shellSpec(dir, 'echo one; exit 1'));
    expect((await first.exited).code).toBe(1);
    const second = await spawnJob(shellSpec(dir, 'echo two; sleep 1; exit 0'));
    reapOnFinish(second);
    // Had the old file survived the spawn, this read would say "1" before the child even ran.
    expect(await readExitStatus(dir)).toBeUndefined();
    expect(await second.exited).toEqual({ code: 0, signal: null, source: 'wrapper' });
    expect(await readText(dir.consolePath)).toBe('one\ntwo\n');
  });

  it('reports a non-zero exit, and a finish error that quotes the log tail', async () => {
    const dir = await tempJobDir();
    const child = await spawnJob(shellSpec(dir, 'for i in $(seq 1 80); do echo "line $i"; done; echo "bad thing" >&2; exit 3'));
    reapOnFinish(child);
    const result = await new ChildSupervisor(child, { killGraceMs: 1000 }).done;
    expect(result.exit).toEqual({ code: 3, signal: null, source: 'wrapper' });
    expect(succeeded(result)).toBe(false);
    const text = (await finishErrorText(result, dir, { lines: 5 }))!;
    expect(text.split('\n')).toEqual([
      'The command exited with status 3',
      '--- last 5 lines of the output ---',
      'line 77',
      'line 78',
      'line 79',
      'line 80',
      'bad thing',
    ]);
    expect(await readExitStatus(dir)).toEqual({ code: 3, signal: null, source: 'wrapper' });
  });

  it('quotes NUL bytes of the log tail as U+FFFD: the server refuses text holding a NUL', async () => {
    const dir = await tempJobDir();
    const child = await spawnJob(shellSpec(dir, "printf 'a\\000b\\n'; exit 1"));
    reapOnFinish(child);
    const result = await new ChildSupervisor(child, { killGraceMs: 1000 }).done;
    const text = (await finishErrorText(result, dir, { lines: 5 }))!;
    expect(text.split('\n')).toEqual(['The command exited with status 1', '--- last 1 lines of the output ---', 'a\uFFFDb']);
  });

  it('reports a command that is not found as status 127', async () => {
    const dir = await tempJobDir();
    const child = await spawnJob({ ...shellSpec(dir, ''), argv: ['no-such-command-ufdl-test'] });
    expect((await child.exited).code).toBe(127);
    expect(await readText(dir.consolePath)).toMatch(/not found/);
  });

  it('rejects when the child cannot be spawned at all', async () => {
    const dir = await tempJobDir();
    await expect(spawnJob({ ...shellSpec(dir, 'true'), cwd: `${dir.root}/missing` })).rejects.toThrow(/ENOENT/);
    await expect(spawnJob({ ...shellSpec(dir, 'true'), argv: [] })).rejects.toThrow(/empty/);
  });
});

describe('stopping', () => {
  it('stops a child that never prints when the job is cancelled, with SIGTERM only', async () => {
    const dir = await tempJobDir();
    const child = await spawnJob(shellSpec(dir, 'exec sleep 300'));
    reapOnFinish(child);
    const supervisor = new ChildSupervisor(child, { killGraceMs: 10_000 });
    await until(() => readProcStat(child.pid) !== undefined, 20_000, 'the child');
    const result = await supervisor.stop('cancelled');
    expect(result.stopReason).toBe('cancelled');
    expect(result.forced).toBe(false);
    // The wrapper outlived the SIGTERM (its trap) and recorded how the command died.
    expect(result.exit).toEqual({ code: null, signal: 'SIGTERM', source: 'wrapper' });
    // dash, as the wrapper, notes the signal death of its command on stderr ("Terminated").
    expect(await finishErrorText(result, dir)).toBe(
      'Job was cancelled; the command was killed by SIGTERM\n--- last 1 lines of the output ---\nTerminated',
    );
    expect(anyoneOf(child.pid)).toEqual([]);
  });

  it('never loses a SIGTERM sent the moment spawnJob returns', async () => {
    // Regression: a stop right after spawn used to reach the wrapper before its command was exec'd;
    // the wrapper's trap swallowed it, the command never saw it, and only SIGKILL ended the job
    // (about one time in five). spawnJob now returns once the command runs.
    for (let i = 0; i < 20; i++) {
      const dir = await tempJobDir(i + 1);
      const child = await spawnJob(shellSpec(dir, 'exec sleep 300'));
      reapOnFinish(child);
      const stopped = await stopGroup(child.pid, { graceMs: 10_000 });
      expect(stopped).toMatchObject({ wasRunning: true, forced: false, survivors: [] });
      expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM', source: 'wrapper' });
    }
  });

  it('SIGKILLs a child that ignores SIGTERM after the grace period', async () => {
    const dir = await tempJobDir();
    const child = await spawnJob(shellSpec(dir, `trap '' TERM; echo ready; while :; do sleep 1; done`));
    reapOnFinish(child);
    await waitForOutput(dir, 'ready');
    const stopped = await stopGroup(child.pid, { graceMs: 500 });
    expect(stopped).toMatchObject({ wasRunning: true, forced: true, survivors: [] });
    // The wrapper died with the group: no status file, the agent's own wait says SIGKILL.
    expect(await child.exited).toEqual({ code: null, signal: 'SIGKILL', source: 'wait' });
    expect(await readExitStatus(dir)).toBeUndefined();
    expect(anyoneOf(child.pid)).toEqual([]);
  });

  it('kills every grandchild, including one that moved to its own process group', async () => {
    const dir = await tempJobDir();
    const script = [
      'sleep 300 &',
      'sh -c "sleep 300 & sleep 300 & wait" &',
      `perl -e 'setpgrp(0, 0); sleep 300' &`,
      '(trap "" TERM; exec sleep 300) &',
      'echo ready',
      'wait',
    ].join('\n');
    const child = await spawnJob(shellSpec(dir, script));
    reapOnFinish(child);
    await waitForOutput(dir, 'ready');
    const before = await eventually(() => {
      const members = groupMembers(child.pid);
      const moved = members.some((p) => p.comm === 'perl' && p.pgid !== child.pid && p.sid === child.pid);
      return moved && members.filter((p) => p.comm === 'sleep').length >= 4 ? members : undefined;
    }, 20_000, 'all grandchildren, one of them in its own group');

    const stopped = await stopGroup(child.pid, { graceMs: 1000 });
    expect(stopped.forced).toBe(true); // the one that ignores TERM
    expect(stopped.survivors).toEqual([]);
    // Checked pid by pid: each one is gone from /proc or at most an unreaped zombie.
    for (const p of before) {
      const now = readProcStat(p.pid);
      expect(now === undefined || now.state === 'Z' || now.startTime !== p.startTime).toBe(true);
    }
    expect(anyoneOf(child.pid)).toEqual([]);
    await child.exited;
  });

  it('stops a child that exceeds its time limit', async () => {
    const dir = await tempJobDir();
    const child = await spawnJob(shellSpec(dir, 'echo started; sleep 300'));
    reapOnFinish(child);
    const result = await new ChildSupervisor(child, { timeLimitMs: 1000, killGraceMs: 2000 }).done;
    expect(result.stopReason).toBe('time-limit');
    expect(result.exit.signal).toBe('SIGTERM');
    expect(Date.now() - child.startedAtMs).toBeGreaterThanOrEqual(900);
    expect(await finishErrorText(result, dir, { timeLimitMs: 1000 })).toMatch(
      /^Time limit of 1 s exceeded; the command was killed by SIGTERM\n--- last 2 lines of the output ---\nstarted\nTerminated$/,
    );
    expect(anyoneOf(child.pid)).toEqual([]);
  });

  it('lets a child run under a time limit longer than a timer can wait (about 24.8 days)', async () => {
    // A month, as a long training might be given: setTimeout fires at once for more than 2^31 - 1 ms.
    const dir = await tempJobDir();
    const child = await spawnJob(shellSpec(dir, 'sleep 1; echo finished'));
    reapOnFinish(child);
    const result = await new ChildSupervisor(child, { timeLimitMs: 30 * 24 * 3600 * 1000, killGraceMs: 2000 }).done;
    expect(result.stopReason).toBeUndefined();
    expect(result.exit).toMatchObject({ code: 0, signal: null });
    expect(await readText(dir.consolePath)).toBe('finished\n');
  });

  it('stops background processes a successful command left behind, and still counts it a success', async () => {
    const dir = await tempJobDir();
    const child = await spawnJob(shellSpec(dir, 'sleep 300 & echo done'));
    reapOnFinish(child);
    const result = await new ChildSupervisor(child, { killGraceMs: 2000 }).done;
    expect(result).toMatchObject({ stopReason: undefined, strays: 1, survivors: [] });
    expect(succeeded(result)).toBe(true);
    expect(await finishErrorText(result, dir)).toBeUndefined();
    expect(anyoneOf(child.pid)).toEqual([]);
  });

  it('stops the work outside the group before the group, settles it after the end, and a stop after the end changes nothing', async () => {
    const dir = await tempJobDir();
    const child = await spawnJob(shellSpec(dir, 'echo ready; sleep 300'));
    reapOnFinish(child);
    await waitForOutput(dir, 'ready');
    const calls: string[] = [];
    const outside: OutsideWork = {
      description: 'a test double of a container',
      stop: async (graceMs) => {
        // The group still runs while its outside work is stopped.
        calls.push(`stop ${graceMs} ${groupMembers(child.pid).length > 0 ? 'group alive' : 'group gone'}`);
      },
      settle: async (exit) => {
        calls.push(`settle ${exit.signal ?? exit.code}`);
        return { explanation: 'it said why', leftOver: undefined };
      },
    };
    const supervisor = new ChildSupervisor(child, { killGraceMs: 2000, outside });
    const [a, b] = await Promise.all([supervisor.stop('shutdown'), supervisor.stop('cancelled')]);
    expect(a).toBe(b);
    expect(a.stopReason).toBe('shutdown');
    expect(calls).toEqual(['stop 2000 group alive', 'settle SIGTERM']);
    expect(a.outside).toEqual({ explanation: 'it said why', leftOver: undefined });
    expect(await supervisor.stop('fenced')).toBe(a);
    expect(calls).toHaveLength(2);
  });
});

describe('re-attaching after an agent restart', () => {
  it('learns the exit status of a child whose runner object was discarded', async () => {
    const dir = await tempJobDir(7);
    // The "old agent": spawn, note the identity a journal would keep, and forget the handle.
    const { pid, startTime } = await spawnJob(shellSpec(dir, 'echo ready; sleep 1; echo bye; exit 7'));
    reapOnFinish({ pid });
    await waitForOutput(dir, 'ready');

    // The "new agent".
    expect(attach(pid, startTime + 1, dir)).toBeUndefined(); // same pid, another process
    const child = attach(pid, startTime, dir, { pollMs: 50 })!;
    expect(child).toMatchObject({ pid, startTime, origin: 'attached' });
    expect(await child.exited).toEqual({ code: 7, signal: null, source: 'wrapper' });
    expect(await readText(dir.consolePath)).toBe('ready\nbye\n');

    // After the end there is nothing to attach to, and the status is still on disk.
    await until(() => attach(pid, startTime, dir) === undefined, 20_000, 'the process to be gone');
    expect(await readExitStatus(dir)).toEqual({ code: 7, signal: null, source: 'wrapper' });
  });

  it('learns a signal death of an attached child, and can stop it like its own', async () => {
    const dir = await tempJobDir();
    const { pid, startTime } = await spawnJob(shellSpec(dir, 'echo ready; sleep 300'));
    reapOnFinish({ pid });
    await waitForOutput(dir, 'ready');
    const child = attach(pid, startTime, dir, { pollMs: 50 })!;
    const result = await new ChildSupervisor(child, { killGraceMs: 5000 }).stop('cancelled');
    expect(result.exit).toEqual({ code: null, signal: 'SIGTERM', source: 'wrapper' });
  });

  it('reports an attached child that died without a status as lost', async () => {
    const dir = await tempJobDir();
    const { pid, startTime } = await spawnJob(shellSpec(dir, 'echo ready; sleep 300'));
    reapOnFinish({ pid });
    await waitForOutput(dir, 'ready');
    const child = attach(pid, startTime, dir, { pollMs: 50 })!;
    process.kill(-pid, 'SIGKILL');
    expect(await child.exited).toEqual({ code: null, signal: null, source: 'lost' });
  });
});
