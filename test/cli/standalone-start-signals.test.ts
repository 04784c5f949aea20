/**
 * `standalone` signalled while it starts, between its server listening and its agent existing (the
 * example templates import, the admin password read). Before, nothing handled a signal there: SIGTERM
 * or SIGINT ended the process outright (killed by the signal, its SQLite store never closed, no log
 * line), and so did SIGHUP (`systemctl reload`). Now a stop closes the server and exits 0, as at any
 * other moment, and a SIGHUP is done once the agent runs. The process is held at that step by a
 * preloaded module (test/fixtures/hold-read.cjs: the read of the generated admin password waits), so
 * the signal arrives there, every time; everything else is the real command.
 * A SIGHUP while the server waits for the resolver (test/fixtures/dns-lookup-fails.cjs) ended the
 * process too; now it is remembered in the same way.
 */
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/build.js';
import { freePort } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { ROOT, startCli } from './commands-support.js';

/** The environment that holds standalone at its read of `<data>/server/admin-password` (until `release` exists). */
function heldAtPasswordRead(release?: string): Record<string, string> {
  return {
    NODE_OPTIONS: `--require ${join(ROOT, 'test', 'fixtures', 'hold-read.cjs')}`,
    UFDL_TEST_HOLD_READ: '/server/admin-password',
    ...(release === undefined ? {} : { UFDL_TEST_HOLD_READ_UNTIL: release }),
    UFDL_AGENT_STATUS_PORT: '-1',
    UFDL_AGENT_MIN_FREE_DISK: '0',
    UFDL_AGENT_LOG_FORMAT: 'json',
  };
}

const HELD = /held read of \S+\/server\/admin-password\n/;

describe('standalone signalled between its server listening and its agent existing', () => {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const) {
    it(`${signal}: closes the server (its store closed) and exits 0 with a log line`, async () => {
      await buildOnce();
      const data = join(await tempDir('ufdl-standalone-gap-'), 'data');
      const standalone = startCli(['standalone', '--data', data, '--port', String(await freePort())], { env: heldAtPasswordRead(), timeoutMs: 60_000 });
      // The password is read once the server listens, before the agent is created.
      await standalone.stdoutMatches(HELD);
      standalone.child.kill(signal);
      const result = await standalone.result;
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(new RegExp(`"signal":"${signal}".*"msg":"stopping while starting: closing the server"`));
      expect(result.stdout).toMatch(/"msg":"stopped while starting"/);
      // Closed, not killed: SQLite's last close folds the write-ahead log into the database and removes it.
      expect(existsSync(join(data, 'server', 'ufdl.sqlite3'))).toBe(true);
      expect(existsSync(join(data, 'server', 'ufdl.sqlite3-wal'))).toBe(false);
      // No agent was started.
      expect(result.stdout).not.toMatch(/"msg":"agent starting"/);
    });
  }

  it('SIGHUP: the start goes on, and the configuration is read again once the agent runs', async () => {
    await buildOnce();
    const dir = await tempDir('ufdl-standalone-gap-');
    const release = join(dir, 'release');
    const standalone = startCli(['standalone', '--data', join(dir, 'data'), '--port', String(await freePort())], { env: heldAtPasswordRead(release), timeoutMs: 120_000 });
    await standalone.stdoutMatches(HELD);
    standalone.child.kill('SIGHUP');
    await standalone.stdoutMatches(/"msg":"SIGHUP while starting: the configuration is read again once the agent runs"/);
    await writeFile(release, '');
    await standalone.stdoutMatches(/"msg":"configuration reloaded: /);
    await standalone.stdoutMatches(/"msg":"agent running/);
    standalone.child.kill('SIGTERM');
    const result = await standalone.result;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/"msg":"standalone stopped"/);
  });

  it('SIGHUP with agent.slots changed: the agent runs with the reloaded slot count, as the reload says it applied', async () => {
    await buildOnce();
    const dir = await tempDir('ufdl-standalone-gap-');
    const release = join(dir, 'release');
    const toml = join(dir, 'agent.toml');
    await writeFile(toml, '[agent]\nslots = 1\n');
    const standalone = startCli(['standalone', '--config', toml, '--data', join(dir, 'data'), '--port', String(await freePort())], {
      env: heldAtPasswordRead(release),
      timeoutMs: 120_000,
    });
    await standalone.stdoutMatches(HELD);
    await writeFile(toml, '[agent]\nslots = 2\n');
    standalone.child.kill('SIGHUP');
    await standalone.stdoutMatches(/"msg":"SIGHUP while starting: the configuration is read again once the agent runs"/);
    await writeFile(release, '');
    await standalone.stdoutMatches(/"msg":"configuration reloaded: applied [^"]*agent\.slots/);
    await standalone.stdoutMatches(/"msg":"agent running/);
    standalone.child.kill('SIGTERM');
    const result = await standalone.result;
    expect(result.code, result.stderr).toBe(0);
    // The reload said the slot count applied: the agent ran with two slots from its first poll.
    const running = result.stdout.indexOf('"msg":"agent running');
    const two = result.stdout.search(/"slots":2,[^\n]*"msg":"(slots re-planned|hardware and executors)/);
    expect(two, result.stdout).toBeGreaterThanOrEqual(0);
    expect(two).toBeLessThan(running);
  });
});

describe('standalone whose step between its server and its agent fails', () => {
  it('closes the server and exits with the error, instead of serving on without an agent', async () => {
    await buildOnce();
    const data = join(await tempDir('ufdl-standalone-gap-'), 'data');
    const port = String(await freePort());
    // A first start makes the database and the generated admin password; stopped there.
    const first = startCli(['standalone', '--data', data, '--port', port], { env: heldAtPasswordRead(), timeoutMs: 60_000 });
    await first.stdoutMatches(HELD);
    first.child.kill('SIGTERM');
    expect((await first.result).code).toBe(0);
    // The password file is gone (deleted by hand): the agent cannot log in, the start cannot go on.
    await rm(join(data, 'server', 'admin-password'));
    const again = startCli(['standalone', '--data', data, '--port', port], {
      env: { UFDL_AGENT_STATUS_PORT: '-1', UFDL_AGENT_MIN_FREE_DISK: '0', UFDL_AGENT_LOG_FORMAT: 'json' },
      timeoutMs: 30_000,
    });
    const result = await again.result;
    expect(result.code, result.stdout).not.toBe(0);
    expect(result.stderr).toMatch(/admin-password/);
    expect(result.stdout).not.toMatch(/"msg":"agent starting"/);
    // Closed, not left serving: the write-ahead log folded into the database and removed.
    expect(existsSync(join(data, 'server', 'ufdl.sqlite3-wal'))).toBe(false);
  });
});

describe('standalone signalled while its server waits for the resolver', () => {
  // The stop there was handled before (test/cli/listen-host-lookup.test.ts); SIGHUP ended the process.
  it('SIGHUP: the wait goes on; a stop then ends it, status 0', async () => {
    await buildOnce();
    const data = join(await tempDir('ufdl-standalone-gap-'), 'data');
    const standalone = startCli(['standalone', '--data', data, '--port', String(await freePort())], {
      env: {
        NODE_OPTIONS: `--require ${join(ROOT, 'test', 'fixtures', 'dns-lookup-fails.cjs')}`,
        UFDL_TEST_DNS_FAILS: 'flaky.test=EAI_AGAIN',
        UFDL_AGENT_SERVE_HOST: 'flaky.test',
        UFDL_AGENT_STATUS_PORT: '-1',
        UFDL_AGENT_LOG_FORMAT: 'json',
      },
    });
    await standalone.stdoutMatches(/"msg":"the server cannot look up flaky\.test just now/);
    standalone.child.kill('SIGHUP');
    await standalone.stdoutMatches(/"msg":"SIGHUP while starting: the configuration is read again once the agent runs"/);
    standalone.child.kill('SIGTERM');
    const result = await standalone.result;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/"msg":"stopped while starting"/);
    expect(existsSync(data)).toBe(false);
  });
});
