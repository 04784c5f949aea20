/**
 * The systemd units in `systemd/`: what they must say (static checks against the code's defaults and
 * exit codes), and `systemd-analyze verify` / `security` where the binary exists (Debian package
 * `systemd`). verify checks that ExecStart= is executable, so it runs on temp copies whose ExecStart
 * points at a stub script.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AGENT_DEFAULTS } from '../../src/agent/options.js';
import { ENV_ALIASES, KEYS, envName } from '../../src/cli/config/keys.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { sharedTempDir } from '../helpers/temp-dir.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const UNITS = ['ufdl-agent.service', 'ufdl-agent@.service', 'ufdl-server.service'] as const;
const AGENT_UNITS = ['ufdl-agent.service', 'ufdl-agent@.service'] as const;
const INSTALLED_BINARY = '/usr/local/bin/ufdl-agent';

type Unit = Map<string, Map<string, string[]>>;

/** Parse a unit file: sections, repeated keys in order, `\` continuations, `#`/`;` comments. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = unit.get(header[1]!) ?? new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 0) throw new Error(`unparsable line: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

function readUnit(name: string): Unit {
  return parseUnit(readFileSync(join(ROOT, 'systemd', name), 'utf8'));
}

/** The effective value of a key: the last assignment (an empty one resets a list). */
function value(unit: Unit, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1);
}

function values(unit: Unit, section: string, key: string): string[] {
  const all = unit.get(section)?.get(key) ?? [];
  const reset = all.lastIndexOf('');
  return all.slice(reset + 1);
}

/** `Environment=` assignments as a map (quotes not used in our units). */
function environment(unit: Unit): Map<string, string> {
  const env = new Map<string, string>();
  for (const assignment of values(unit, 'Service', 'Environment')) {
    for (const pair of assignment.split(/\s+/)) {
      const eq = pair.indexOf('=');
      env.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
  }
  return env;
}

/** A systemd time span in seconds: `900`, `15min`, `4h 15min`, `2h`. */
function seconds(span: string): number {
  if (span === 'infinity') return Infinity;
  const units: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, sec: 1, m: 60, min: 60, h: 3600, hr: 3600, d: 86400 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*([a-z]*)/g;
  let rest = span.trim();
  for (const m of span.matchAll(re)) {
    const unit = m[2] === '' ? 's' : m[2]!;
    if (!(unit in units)) throw new Error(`unknown time unit '${unit}' in '${span}'`);
    total += Number(m[1]) * units[unit]!;
    rest = rest.replace(m[0], '').trim();
  }
  if (rest !== '') throw new Error(`unparsable time span '${span}'`);
  return total;
}

const yes = (v: string | undefined) => v !== undefined && ['yes', 'true', 'on', '1'].includes(v);

describe('systemd units: the agent at rest', () => {
  it('start the agent with the V8 flags of the image\'s `run` (a small young generation), and the server without', () => {
    const entrypoint = readFileSync(join(ROOT, 'deploy', 'entrypoint.sh'), 'utf8');
    const imageRun = /^\s*run\)\s*exec node (.*?) \/app\/dist\/cli\/main\.js "\$@"/m.exec(entrypoint)?.[1];
    expect(imageRun).toBe('--max-semi-space-size=1');
    for (const name of AGENT_UNITS) {
      const exec = value(readUnit(name), 'Service', 'ExecStart')!;
      expect(exec, name).toBe(`/usr/bin/env node ${imageRun} ${INSTALLED_BINARY} run`);
    }
    expect(value(readUnit('ufdl-server.service'), 'Service', 'ExecStart')).toBe(`${INSTALLED_BINARY} serve`);
  });
});

describe('systemd units: static checks', () => {
  describe.each(UNITS)('%s', (name) => {
    const unit = readUnit(name);

    it('runs the installed ufdl-agent binary with the right subcommand', () => {
      const exec = value(unit, 'Service', 'ExecStart')!.split(/\s+/);
      const at = exec.indexOf(INSTALLED_BINARY);
      expect(at).toBeGreaterThanOrEqual(0);
      expect(exec[at + 1]).toBe(name === 'ufdl-server.service' ? 'serve' : 'run');
      // Anything before it is Node.js and its flags, found as the binary's shebang finds it.
      if (at > 0) expect(exec.slice(0, 2)).toEqual(['/usr/bin/env', 'node']);
    });

    it('runs as a dedicated non-root user', () => {
      const user = value(unit, 'Service', 'User');
      expect(user).toBe('ufdl');
      expect(value(unit, 'Service', 'Group')).toBe('ufdl');
      expect(yes(value(unit, 'Service', 'DynamicUser'))).toBe(false);
    });

    it('restarts on failure, but not after a usage or configuration error', () => {
      expect(value(unit, 'Service', 'Restart')).toBe('on-failure');
      const prevent = values(unit, 'Service', 'RestartPreventExitStatus').join(' ').split(/\s+/).map(Number);
      expect(prevent).toEqual(expect.arrayContaining([EXIT.USAGE, EXIT.CONFIG]));
      // A restart can fix an unreachable server, a crash or a temporary failure (a resolver that does
      // not answer yet), so those must not be listed.
      expect(prevent).not.toContain(EXIT.UNAVAILABLE);
      expect(prevent).not.toContain(EXIT.SOFTWARE);
      expect(prevent).not.toContain(EXIT.TEMPFAIL);
    });

    it('is Type=notify with a watchdog, and takes notifications from the main process only', () => {
      expect(value(unit, 'Service', 'Type')).toBe('notify');
      // The program sends from its own pid; jobs (other pids in the cgroup) must not speak for it.
      expect(value(unit, 'Service', 'NotifyAccess') ?? 'main').toBe('main');
      const watchdog = seconds(value(unit, 'Service', 'WatchdogSec')!);
      // Pings go out every WatchdogSec/2 from the event loop; long enough for a GC pause or a busy
      // moment, short enough that a wedged process is restarted within minutes.
      expect(watchdog).toBeGreaterThanOrEqual(20);
      expect(watchdog).toBeLessThanOrEqual(300);
      // Starting is bounded by silence, not by its length: the program extends the timeout while it
      // waits for the server; this is how long it may say nothing.
      expect(seconds(value(unit, 'Service', 'TimeoutStartSec') ?? '90')).toBeGreaterThanOrEqual(30);
      // `systemctl reload` is SIGHUP to the main process (a configuration and hardware reload).
      expect(value(unit, 'Service', 'ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    });

    it('sends SIGTERM to the main process only (KillMode=mixed)', () => {
      expect(value(unit, 'Service', 'KillMode')).toBe('mixed');
      expect(value(unit, 'Service', 'KillSignal') ?? 'SIGTERM').toBe('SIGTERM');
      expect(value(unit, 'Service', 'SendSIGKILL') ?? 'yes').toBe('yes');
    });

    it('is hardened (NoNewPrivileges, ProtectSystem, ProtectHome, PrivateTmp)', () => {
      expect(yes(value(unit, 'Service', 'NoNewPrivileges'))).toBe(true);
      expect(value(unit, 'Service', 'ProtectSystem')).toBe('strict');
      expect(['yes', 'read-only', 'tmpfs']).toContain(value(unit, 'Service', 'ProtectHome'));
      expect(yes(value(unit, 'Service', 'PrivateTmp'))).toBe(true);
      // V8 needs writable+executable memory.
      expect(yes(value(unit, 'Service', 'MemoryDenyWriteExecute'))).toBe(false);
    });

    it('keeps its state in its StateDirectory, the only writable place under ProtectSystem=strict', () => {
      const state = value(unit, 'Service', 'StateDirectory');
      expect(state).toBeTruthy();
      const env = environment(unit);
      const dir = name === 'ufdl-server.service' ? env.get('UFDL_AGENT_SERVE_DATA_DIR') : env.get('UFDL_AGENT_WORK_DIR');
      expect(dir === `%S/${state}` || dir?.startsWith(`%S/${state}/`)).toBe(true);
      expect(value(unit, 'Service', 'WorkingDirectory')).toBe(`%S/${state}`);
      expect(values(unit, 'Service', 'ReadWritePaths')).toEqual([]);
    });

    it('sets only environment variables the program reads', () => {
      const known = new Set([...KEYS.map(envName), ...Object.keys(ENV_ALIASES), 'UFDL_AGENT_CONFIG', 'UFDL_AGENT_LOG_LEVEL', 'UFDL_AGENT_LOG_FORMAT', 'NODE_ENV']);
      for (const name of environment(unit).keys()) expect(known, name).toContain(name);
      expect(environment(unit).get('UFDL_AGENT_CONFIG')).toMatch(/^\/etc\/ufdl-agent\/.+\.toml$/);
    });

    it('does not keep a secret in the unit, and reads the optional environment file', () => {
      for (const secret of KEYS.filter((k) => k.secret).map(envName)) expect(environment(unit).has(secret)).toBe(false);
      expect(values(unit, 'Service', 'EnvironmentFile').every((f) => f.startsWith('-/etc/ufdl-agent/'))).toBe(true);
    });

    it('starts after the network and is enabled for multi-user.target', () => {
      expect(values(unit, 'Unit', 'After').join(' ')).toContain('network-online.target');
      expect(values(unit, 'Unit', 'Wants').join(' ')).toContain('network-online.target');
      expect(value(unit, 'Install', 'WantedBy')).toBe('multi-user.target');
    });
  });

  describe.each(AGENT_UNITS)('%s (agent)', (name) => {
    const unit = readUnit(name);

    it('gives a drain more time than the default drain timeout plus the kill grace', () => {
      const stop = seconds(value(unit, 'Service', 'TimeoutStopSec')!);
      const drain = AGENT_DEFAULTS.drainTimeoutMs / 1000;
      const grace = AGENT_DEFAULTS.killGraceMs / 1000;
      expect(drain).toBe(600);
      // At least a minute beyond drain + grace for uploading the logs and reporting.
      expect(stop).toBeGreaterThanOrEqual(drain + grace + 60);
      expect(stop).toBeLessThan(Infinity);
    });

    it('leaves the GPUs visible (no device sandboxing)', () => {
      expect(yes(value(unit, 'Service', 'PrivateDevices'))).toBe(false);
      expect(['closed', 'strict']).not.toContain(value(unit, 'Service', 'DevicePolicy'));
      expect(values(unit, 'Service', 'DeviceAllow')).toEqual([]);
      // ProtectClock=yes implies DeviceAllow=char-rtc, an allow-list that hides /dev/nvidia* (systemd < 253).
      expect(yes(value(unit, 'Service', 'ProtectClock'))).toBe(false);
    });

    it('lets jobs run /bin/sh and other programs (no allow-list system-call filter, no namespace ban)', () => {
      for (const filter of values(unit, 'Service', 'SystemCallFilter')) expect(filter.startsWith('~')).toBe(true);
      expect(value(unit, 'Service', 'RestrictNamespaces')).toBeUndefined();
      expect(value(unit, 'Service', 'NoExecPaths')).toBeUndefined();
    });
  });

  it('ufdl-agent@.service keeps each instance apart: configuration, environment file and state by %i', () => {
    const unit = readUnit('ufdl-agent@.service');
    expect(environment(unit).get('UFDL_AGENT_CONFIG')).toBe('/etc/ufdl-agent/%i.toml');
    expect(values(unit, 'Service', 'EnvironmentFile')).toContain('-/etc/ufdl-agent/%i.env');
    expect(value(unit, 'Service', 'StateDirectory')).toBe('ufdl-agent/%i');
    expect(environment(unit).get('UFDL_AGENT_WORK_DIR')).toBe('%S/ufdl-agent/%i/work');
  });

  it('the single agent and the template differ only where the instance name matters', () => {
    const single = readUnit('ufdl-agent.service').get('Service')!;
    const template = readUnit('ufdl-agent@.service').get('Service')!;
    const instanceKeys = new Set(['Environment', 'EnvironmentFile', 'StateDirectory', 'WorkingDirectory', 'SyslogIdentifier']);
    for (const key of new Set([...single.keys(), ...template.keys()])) {
      if (!instanceKeys.has(key)) expect(template.get(key), key).toEqual(single.get(key));
    }
  });

  it('ufdl-server.service gives in-flight requests time to finish and sandboxes devices', () => {
    const unit = readUnit('ufdl-server.service');
    expect(seconds(value(unit, 'Service', 'TimeoutStopSec')!)).toBeGreaterThanOrEqual(30);
    expect(yes(value(unit, 'Service', 'PrivateDevices'))).toBe(true);
  });
});

// ---- systemd-analyze ----

const analyzeVersion = (() => {
  const r = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return Number(/systemd (\d+)/.exec(r.stdout)?.[1] ?? 0);
})();
const NO_ANALYZE = 'systemd-analyze is not installed (Debian: apt-get install systemd)';

/** Temp copies of the units whose ExecStart= points at an executable stub, removed after the file's tests. */
const copies = (() => {
  if (analyzeVersion === undefined) return undefined;
  const dir = sharedTempDir('ufdl-units-')();
  const stub = join(dir, 'ufdl-agent');
  writeFileSync(stub, '#!/bin/sh\nexit 0\n');
  chmodSync(stub, 0o755);
  for (const name of UNITS) {
    const text = readFileSync(join(ROOT, 'systemd', name), 'utf8');
    if (!/^ExecStart=.*\/usr\/local\/bin\/ufdl-agent /m.test(text)) throw new Error(`${name}: ExecStart= does not start ${INSTALLED_BINARY}`);
    writeFileSync(join(dir, name), text.replaceAll(`${INSTALLED_BINARY} `, `${stub} `));
  }
  return { dir, stub };
})();

/** Run `systemd-analyze verify`; any diagnostic about one of the given files is a failure. */
function verify(dir: string, files: string[]): { status: number | null; problems: string[] } {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...files.map((f) => join(dir, f))], { encoding: 'utf8', cwd: dir });
  const output = `${r.stdout}\n${r.stderr}`;
  // Diagnostics about the units of this machine (not ours) are not our business.
  const problems = output.split('\n').filter((line) => line.includes(dir) || files.some((f) => line.includes(f)));
  return { status: r.status, problems };
}

describe('systemd units: systemd-analyze', () => {
  it.skipIf(!copies)(`verify passes without a diagnostic${copies ? '' : ` (skipped: ${NO_ANALYZE})`}`, () => {
    // The template is verified through an instance, so that %i is expanded.
    const result = verify(copies!.dir, ['ufdl-agent.service', 'ufdl-server.service', 'ufdl-agent@gpu0.service']);
    expect(result.problems).toEqual([]);
    expect(result.status).toBe(0);
  });

  it.skipIf(!copies)(`verify of the template itself passes${copies ? '' : ` (skipped: ${NO_ANALYZE})`}`, () => {
    const result = verify(copies!.dir, ['ufdl-agent@.service']);
    expect(result.problems).toEqual([]);
    expect(result.status).toBe(0);
  });

  it.skipIf(!copies)(`the check catches a broken unit (control)${copies ? '' : ` (skipped: ${NO_ANALYZE})`}`, () => {
    const broken = readFileSync(join(copies!.dir, 'ufdl-agent.service'), 'utf8').replace(/^KillMode=mixed$/m, 'KillMode=mixd\nRestartPreventExitSatus=64');
    writeFileSync(join(copies!.dir, 'broken.service'), broken);
    expect(verify(copies!.dir, ['broken.service']).problems.length).toBeGreaterThanOrEqual(2);
    // The server's ExecStart= is the binary itself (the agents' is /usr/bin/env node …).
    const server = readFileSync(join(copies!.dir, 'ufdl-server.service'), 'utf8');
    writeFileSync(join(copies!.dir, 'missing.service'), server.replace(copies!.stub, '/nonexistent/ufdl-agent'));
    expect(verify(copies!.dir, ['missing.service']).status).not.toBe(0);
  });

  const hasOffline = analyzeVersion !== undefined && analyzeVersion >= 250;
  it.skipIf(!copies || !hasOffline)(
    `security exposure stays low: agents at most 5.0, server at most 2.5${hasOffline ? '' : ` (skipped: ${copies ? 'systemd-analyze older than 250 has no --offline' : NO_ANALYZE})`}`,
    () => {
      const limits: Array<[string, number]> = [
        ['ufdl-agent.service', 50],
        ['ufdl-agent@gpu0.service', 50],
        ['ufdl-server.service', 25],
      ];
      for (const [file, threshold] of limits) {
        const r = spawnSync('systemd-analyze', ['security', '--offline=true', `--threshold=${threshold}`, '--no-pager', join(copies!.dir, file)], {
          encoding: 'utf8',
          cwd: copies!.dir,
        });
        const summary = r.stdout.trim().split('\n').at(-1);
        expect(r.status, `${file}: ${summary}`).toBe(0);
      }
    },
  );
});
