/** Pure parts of the child runner: /proc parsing, exit statuses, log tails, job directories. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createJobDir, jobDirPaths, jobJsonContent, journalledJobDir, SERVER_DIR_NAME, serverDirName, writeJobJson } from '../../../src/agent/child/job-dir.js';
import { parseProcStat, readProcStat } from '../../../src/agent/child/proc.js';
import { stopGroup } from '../../../src/agent/child/stop-group.js';
import { tailLines } from '../../../src/agent/child/tail.js';
import { exitFromStatus, readExitStatus } from '../../../src/agent/child/wrapper.js';
import { job, template, typed } from '../executors/fixtures.js';
import { tempWorkDir } from './helpers.js';

describe('parseProcStat', () => {
  it('reads the fields after a command name that contains spaces and parentheses', () => {
    const line =
      '4242 (my (weird) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0';
    expect(parseProcStat(line)).toEqual({
      pid: 4242,
      comm: 'my (weird) prog',
      state: 'S',
      ppid: 1,
      pgid: 4242,
      sid: 4242,
      startTime: 987654,
    });
    expect(parseProcStat('garbage')).toBeUndefined();
  });

  it('reads this very process', () => {
    const me = readProcStat(process.pid)!;
    expect(me.pid).toBe(process.pid);
    expect(me.ppid).toBe(process.ppid);
    expect(readProcStat(2 ** 30)).toBeUndefined();
  });
});

describe('stopGroup', () => {
  it("refuses the agent's own process group and nonsense", async () => {
    await expect(stopGroup(readProcStat(process.pid)!.pgid, { graceMs: 0 })).rejects.toThrow(/refusing/);
    await expect(stopGroup(1, { graceMs: 0 })).rejects.toThrow(/refusing/);
    await expect(stopGroup(-5, { graceMs: 0 })).rejects.toThrow(/refusing/);
  });

  it('reports a group that has no live member as not running', async () => {
    // Above pid_max: no process can have this group id.
    const unused = Number(await readFile('/proc/sys/kernel/pid_max', 'utf8')) + 1;
    expect(await stopGroup(unused, { graceMs: 0 })).toEqual({ wasRunning: false, forced: false, survivors: [] });
  });
});

describe('exit statuses', () => {
  it('reads shell statuses: exit codes below 129, 128+N as signal N', () => {
    expect(exitFromStatus(0)).toEqual({ code: 0, signal: null, source: 'wrapper' });
    expect(exitFromStatus(127)).toEqual({ code: 127, signal: null, source: 'wrapper' });
    expect(exitFromStatus(128)).toEqual({ code: 128, signal: null, source: 'wrapper' });
    expect(exitFromStatus(137)).toEqual({ code: null, signal: 'SIGKILL', source: 'wrapper' });
    expect(exitFromStatus(143)).toEqual({ code: null, signal: 'SIGTERM', source: 'wrapper' });
    expect(exitFromStatus(255)).toEqual({ code: 255, signal: null, source: 'wrapper' });
  });

  it('treats a missing or corrupt exit-status file as no status', async () => {
    const dir = jobDirPaths(await tempWorkDir(), 'http://ufdl.test', 1);
    expect(await readExitStatus(dir)).toBeUndefined();
    await createJobDir(dir);
    await writeFile(dir.exitStatusPath, '{"status":');
    expect(await readExitStatus(dir)).toBeUndefined();
    await writeFile(dir.exitStatusPath, '{"status":-1}\n');
    expect(await readExitStatus(dir)).toBeUndefined();
    await writeFile(dir.exitStatusPath, '{"status":2}\n');
    expect(await readExitStatus(dir)).toEqual({ code: 2, signal: null, source: 'wrapper' });
  });
});

describe('tailLines', () => {
  async function file(content: string | Buffer): Promise<string> {
    const path = join(await tempWorkDir(), 'log');
    await writeFile(path, content);
    return path;
  }

  it('returns the last n lines, with or without a final newline, CRLF or not', async () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i}`);
    expect(await tailLines(await file(`${lines.join('\n')}\n`), 3)).toEqual(['line 4997', 'line 4998', 'line 4999']);
    expect(await tailLines(await file(lines.join('\n')), 2)).toEqual(['line 4998', 'line 4999']);
    expect(await tailLines(await file('a\r\nb\r\n'), 5)).toEqual(['a', 'b']);
    expect(await tailLines(await file('only\n'), 50)).toEqual(['only']);
    expect(await tailLines(await file('x\n\n\ny\n'), 3)).toEqual(['', '', 'y']);
  });

  it('returns nothing for a missing or empty file or n = 0', async () => {
    expect(await tailLines('/nonexistent/log', 5)).toEqual([]);
    expect(await tailLines(await file(''), 5)).toEqual([]);
    expect(await tailLines(await file('a\n'), 0)).toEqual([]);
  });

  it('reads at most maxBytes from the end of an endless line', async () => {
    const path = await file(`start\n${'z'.repeat(1_000_000)}`);
    const tail = await tailLines(path, 10, { maxBytes: 1000 });
    expect(tail).toEqual(['z'.repeat(1000)]);
  });
});

describe('job directories', () => {
  const A = 'http://server-a.test:8000';
  const B = 'http://server-b.test:8000';

  it("names the directory by a digest of the server's URL (as the journal normalises it) and the pk, and refuses anything but a positive integer", () => {
    const dir = jobDirPaths('/srv/work/', A, 12);
    const server = serverDirName(A);
    expect(server).toMatch(SERVER_DIR_NAME);
    expect(dir).toMatchObject({
      root: `/srv/work/${server}/12`,
      inputDir: `/srv/work/${server}/12/input`,
      outputDir: `/srv/work/${server}/12/output`,
      jobJsonPath: `/srv/work/${server}/12/job.json`,
      consolePath: `/srv/work/${server}/12/console.log`,
      exitStatusPath: `/srv/work/${server}/12/exit-status`,
    });
    expect(jobDirPaths('/srv/work', `${A}/`, 12).root).toBe(dir.root);
    expect(jobDirPaths('/srv/work', B, 12).root).not.toBe(dir.root);
    for (const bad of [0, -1, 1.5, NaN]) expect(() => jobDirPaths('/w', A, bad)).toThrow(TypeError);
  });

  it('starts each attempt afresh, so stale outputs are never uploaded', async () => {
    const work = await tempWorkDir();
    const first = await createJobDir(jobDirPaths(work, A, 5));
    await writeFile(join(first.outputDir, 'stale.bin'), 'old');
    await writeFile(first.exitStatusPath, '{"status":0}\n');
    const second = await createJobDir(jobDirPaths(work, A, 5));
    expect(await readExitStatus(second)).toBeUndefined();
    await expect(readFile(join(second.outputDir, 'stale.bin'))).rejects.toThrow(/ENOENT/);
  });

  it("creates another server's job of the same pk beside it, never over it", async () => {
    const work = await tempWorkDir();
    const kept = await createJobDir(jobDirPaths(work, A, 7));
    await writeFile(join(kept.outputDir, 'result.txt'), 'A');
    const other = await createJobDir(jobDirPaths(work, B, 7));
    expect(other.root).not.toBe(kept.root);
    expect(await readFile(join(kept.outputDir, 'result.txt'), 'utf8')).toBe('A');
  });

  it('finds the directory a journal entry recorded, in the work directory the agent has now', () => {
    const server = serverDirName(A);
    // A version before the per-server directories recorded `<work>/<pk>`.
    expect(journalledJobDir({ serverUrl: A, jobPk: 7, jobDir: '/srv/work/7' }, '/srv/work').root).toBe('/srv/work/7');
    expect(journalledJobDir({ serverUrl: A, jobPk: 7, jobDir: `/srv/work/${server}/7` }, '/srv/work').root).toBe(`/srv/work/${server}/7`);
    // The entry's server address was renamed (aliases): the directory stays the one it recorded.
    const renamed = serverDirName('http://old-name.test');
    expect(journalledJobDir({ serverUrl: A, jobPk: 7, jobDir: `/srv/work/${renamed}/7` }, '/srv/work').root).toBe(`/srv/work/${renamed}/7`);
    // The work directory moved (or is reached by another path): followed, as before; never a path outside it.
    expect(journalledJobDir({ serverUrl: A, jobPk: 7, jobDir: '/old/work/7' }, '/srv/work').root).toBe('/srv/work/7');
    expect(journalledJobDir({ serverUrl: A, jobPk: 7, jobDir: `/old/work/${server}/7` }, '/srv/work').root).toBe(`/srv/work/${server}/7`);
    // None recorded, or one that is not this job's: its server's path, never the shared `<work>/<pk>`.
    expect(journalledJobDir({ serverUrl: A, jobPk: 7, jobDir: null }, '/srv/work').root).toBe(`/srv/work/${server}/7`);
    expect(journalledJobDir({ serverUrl: A, jobPk: 7, jobDir: '/etc' }, '/srv/work').root).toBe(`/srv/work/${server}/7`);
  });

  it('writes job.json with inputs, their local paths and the resolved parameters', async () => {
    const dir = await createJobDir(jobDirPaths(await tempWorkDir(), 'http://ufdl.test', 9));
    const j = job(9, {}, { model: typed(3, 'JobOutput<Model>'), n: typed(2, 'int') });
    const t = template('ufdl_agent.Shell', {});
    await writeJobJson(dir, jobJsonContent(dir, j, t, { body: 'x' }, { model: `${dir.inputDir}/model` }));
    const written = JSON.parse(await readFile(dir.jobJsonPath, 'utf8'));
    expect(written).toEqual({
      job: j,
      template: t,
      inputs: { model: { value: 3, type: 'JobOutput<Model>', path: `${dir.inputDir}/model` }, n: { value: 2, type: 'int' } },
      parameters: { body: 'x' },
      dirs: { job: dir.root, input: dir.inputDir, output: dir.outputDir },
    });
  });
});
