/**
 * The Dockerfile, .dockerignore and deploy/compose.yaml, checked statically (no Docker daemon is
 * needed): multi-stage with production dependencies only, a non-root user, tini as PID 1, volumes,
 * STOPSIGNAL, a health check, one image for run/serve/standalone. The health check's script is also
 * run for real against local HTTP servers.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_DEFAULTS } from '../../src/agent/options.js';
import { ENV_ALIASES, KEYS, envName } from '../../src/cli/config/keys.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

interface Instruction {
  op: string;
  args: string;
}

/** Instructions of a Dockerfile: continuation lines joined, comment lines (also inside continuations) dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line)) continue;
    if (current === '' && line.trim() === '') continue;
    if (line.endsWith('\\')) {
      current += line.slice(0, -1);
      continue;
    }
    current += line;
    const m = /^\s*(\S+)\s*(.*)$/s.exec(current)!;
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim() });
    current = '';
  }
  return out;
}

/** Split into stages at each FROM. */
function stages(instructions: Instruction[]): Instruction[][] {
  const result: Instruction[][] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') result.push([]);
    result.at(-1)?.push(ins);
  }
  return result;
}

const all = (stage: Instruction[], op: string) => stage.filter((i) => i.op === op);
const last = (stage: Instruction[], op: string) => all(stage, op).at(-1);
const runText = (stage: Instruction[]) => all(stage, 'RUN').map((i) => i.args).join('\n');

/** Seconds of a compose duration: `15m`, `1h30m`, `90s`. */
function durationSeconds(text: string): number {
  const units: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(us|ms|s|m|h)/g)];
  if (parts.map((p) => p[0]).join('') !== text) throw new Error(`bad duration ${text}`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]!]!, 0);
}

const dockerfile = read('Dockerfile');
const instructions = parseDockerfile(dockerfile);
const [build, ...rest] = stages(instructions);
const final = rest.at(-1)!;
const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; engines: { node: string } };
const KNOWN_ENV = new Set([...KEYS.map(envName), ...Object.keys(ENV_ALIASES), 'UFDL_AGENT_CONFIG', 'UFDL_AGENT_LOG_LEVEL', 'UFDL_AGENT_LOG_FORMAT']);

/** ENV instructions as a map (`A=1 B=2` form). */
function envOf(stage: Instruction[]): Map<string, string> {
  const env = new Map<string, string>();
  for (const ins of all(stage, 'ENV')) {
    for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env.set(m[1]!, m[2]!.replace(/^"|"$/g, ''));
  }
  return env;
}

describe('Dockerfile', () => {
  it('is multi-stage: a build stage, then a runtime, both FROM the NODE_IMAGE build argument', () => {
    expect(rest.length).toBeGreaterThanOrEqual(1);
    expect(build![0]!.args).toMatch(/^\$\{NODE_IMAGE\}\s+AS\s+build$/i);
    // The same image in both stages, so that the native module built in one runs in the other.
    expect(final[0]!.args).toBe('${NODE_IMAGE}');
  });

  it('defaults NODE_IMAGE to a bookworm-slim Node image of a line that package.json engines lists', () => {
    const arg = instructions.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='));
    expect(instructions.indexOf(arg!)).toBeLessThan(instructions.findIndex((i) => i.op === 'FROM'));
    const line = /^NODE_IMAGE=node:(\d+)-bookworm-slim$/.exec(arg!.args)?.[1];
    expect(line, arg?.args).toBeDefined();
    const engines = pkg.engines.node.split('||').map((range) => /\^?(\d+)/.exec(range.trim())![1]);
    expect(engines).toContain(line);
    // The newest line the project supports is the one it ships.
    expect(Number(line)).toBe(Math.max(...engines.map(Number)));
    // No `# syntax=` line: it makes BuildKit pull a frontend image from a registry.
    expect(dockerfile).not.toMatch(/^#\s*syntax=/m);
  });

  it('builds the native module and the TypeScript in the build stage', () => {
    const run = runText(build!);
    for (const tool of ['python3', 'make', 'g++']) expect(run).toMatch(new RegExp(`apt-get install[^\\n]*\\s${tool.replace('+', '\\+')}(\\s|$)`));
    expect(run).toMatch(/npm ci\b/);
    expect(run).toMatch(/npm run build\b/);
    // Dev dependencies (typescript, vitest) stay out of the image.
    expect(run).toMatch(/npm prune --omit=dev|npm ci [^\n]*--omit=dev/);
    // The lockfile and the package's own native module (binding.gyp, native/) before `npm ci`, which builds it.
    const copies = all(build!, 'COPY').map((i) => i.args);
    expect(copies).toContain('package.json package-lock.json binding.gyp ./');
    expect(copies).toContain('native ./native');
    const ci = build!.findIndex((i) => i.op === 'RUN' && /npm ci\b/.test(i.args));
    expect(build!.findIndex((i) => i.op === 'COPY' && i.args === 'native ./native')).toBeLessThan(ci);
  });

  it('copies only built artefacts and production modules into the runtime stage, without compilers', () => {
    const copies = all(final, 'COPY').map((i) => i.args);
    expect(copies.some((c) => /^--from=build\s+\/app\/node_modules\s/.test(c))).toBe(true);
    // The CLI's bundle and the dashboard: what runs, not tsc's per-module output beside them.
    expect(copies).toContain('--from=build /app/dist/cli ./dist/cli');
    expect(copies).toContain('--from=build /app/dist/ui ./dist/ui');
    expect(copies.some((c) => /^--from=build\s+\/app\/dist\s/.test(c))).toBe(false);
    expect(copies).toContain('--from=build /app/build/Release/ufdl_notify.node ./build/Release/ufdl_notify.node');
    const run = runText(final);
    expect(run).not.toMatch(/\bg\+\+|\bmake\b|python3|npm (ci|install)/);
    // The templates and commented configuration ship with the image.
    expect(copies).toContain('config ./config');
  });

  it('runs as a non-root user created in the runtime stage', () => {
    const user = last(final, 'USER')?.args;
    expect(user).toBeDefined();
    const [name, group] = user!.split(':');
    expect(['root', '0']).not.toContain(name);
    if (group !== undefined) expect(['root', '0']).not.toContain(group);
    const run = runText(final);
    if (/^\d+$/.test(name!)) {
      expect(run).toMatch(new RegExp(`useradd [^\\n]*--uid ${name}\\b[^\\n]*\\bufdl\\b`));
      expect(run).toMatch(new RegExp(`groupadd [^\\n]*--gid ${group}\\b`));
    } else {
      expect(run).toMatch(new RegExp(`useradd [^\\n]*\\b${name}\\b`));
    }
    // USER comes before the entrypoint, and nothing switches back.
    const index = (op: string) => final.findIndex((i) => i.op === op);
    expect(index('USER')).toBeLessThan(index('ENTRYPOINT'));
  });

  it('has tini as PID 1 running the package bin, one image for run, serve and standalone', () => {
    expect(runText(final)).toMatch(/apt-get install[^\n]*\stini(\s|$)/);
    const entrypoint = JSON.parse(last(final, 'ENTRYPOINT')!.args) as string[];
    expect(['tini', '/usr/bin/tini']).toContain(entrypoint[0]);
    expect(entrypoint[1]).toBe('--');
    expect(entrypoint.slice(2)).toEqual(['/app/entrypoint.sh']);
    expect(all(final, 'COPY').map((i) => i.args)).toContain('deploy/entrypoint.sh ./entrypoint.sh');
    // The script runs the package bin for every command, and exec's it (node is tini's child).
    const script = read('deploy/entrypoint.sh');
    const execs = [...script.matchAll(/exec node ((?:--\S+ )*)(\S+) "\$@"/g)];
    expect(execs.length).toBeGreaterThanOrEqual(2);
    for (const [, , bin] of execs) expect(bin).toBe(`/app/${pkg.bin['ufdl-agent']}`);
    expect(script).toMatch(/^\s*\*\) exec node \/app\/dist\/cli\/main\.js "\$@" ;;$/m);
    // No -g: the agent alone gets the signal and stops its jobs' process groups itself.
    expect(entrypoint).not.toContain('-g');
    expect(JSON.parse(last(final, 'CMD')!.args)).toEqual(['run']);
  });

  it('stops with SIGTERM', () => {
    expect(last(final, 'STOPSIGNAL')?.args).toBe('SIGTERM');
  });

  it('declares volumes for the journal/data and the work directory, owned by the service user', () => {
    const volumes = all(final, 'VOLUME').flatMap((i) => (i.args.startsWith('[') ? (JSON.parse(i.args) as string[]) : i.args.split(/\s+/)));
    expect(volumes).toEqual(expect.arrayContaining(['/var/lib/ufdl-agent', '/var/lib/ufdl-agent/work']));
    // Created and chowned before VOLUME, so that a new named volume inherits the owner.
    const volumeAt = final.findIndex((i) => i.op === 'VOLUME');
    const before = final.slice(0, volumeAt).filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(before).toMatch(/mkdir -p [^\n]*\/var\/lib\/ufdl-agent\/work/);
    expect(before).toMatch(/chown -R ufdl:ufdl \/var\/lib\/ufdl-agent/);
    // The work directory, and so the journal beside it, are on the volumes.
    const env = envOf(final);
    expect(env.get('UFDL_AGENT_WORK_DIR')).toBe('/var/lib/ufdl-agent/work');
    expect(env.get('UFDL_AGENT_SERVE_DATA_DIR')?.startsWith('/var/lib/ufdl-agent/')).toBe(true);
  });

  it('sets only environment variables that the program (or the NVIDIA runtime) reads', () => {
    for (const name of envOf(final).keys()) {
      if (name === 'NODE_ENV' || name.startsWith('NVIDIA_')) continue;
      expect(KNOWN_ENV, name).toContain(name);
    }
    // A server in a container must listen beyond its own loopback.
    expect(envOf(final).get('UFDL_AGENT_SERVE_HOST')).toBe('0.0.0.0');
    expect(all(final, 'EXPOSE').map((i) => i.args)).toContain(String(KEYS.find((k) => k.section === 'serve' && k.name === 'port')!.default));
  });

  it('has a HEALTHCHECK on /livez with node and fetch (the image has no curl)', () => {
    const health = last(final, 'HEALTHCHECK')!.args;
    expect(health).toMatch(/--interval=\d+s/);
    expect(health).toMatch(/\bCMD node -e /);
    expect(health).toContain('/livez');
    expect(health).toContain('fetch(');
    expect(health).not.toMatch(/\bcurl\b|\bwget\b/);
  });

  it('copies from the context only files that exist and .dockerignore lets through', () => {
    const ignore = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const needed of ['node_modules', 'dist', '.git', 'data']) expect(ignore).toContain(needed);
    const matches = (pattern: string, path: string) => {
      const re = new RegExp(`^${pattern.replace(/[.+^${}()|]/g, '\\$&').replace(/\*\*\//g, '(.*/)?').replace(/\*/g, '[^/]*')}(/.*)?$`);
      return re.test(path);
    };
    const sources = all(instructions, 'COPY')
      .filter((i) => !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1));
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'config']));
    for (const source of sources) {
      expect(existsSync(join(ROOT, source)), source).toBe(true);
      // As Docker reads it: the last pattern that matches decides, and `!pattern` lets a path through.
      let excludedBy: string | undefined;
      for (const pattern of ignore) {
        if (pattern.startsWith('!')) {
          if (matches(pattern.slice(1), source)) excludedBy = undefined;
        } else if (matches(pattern, source)) excludedBy = pattern;
      }
      expect(excludedBy, `${source} excluded by ${excludedBy}`).toBeUndefined();
    }
  });
});

describe('Dockerfile HEALTHCHECK script', () => {
  /** The shell command of HEALTHCHECK CMD, as Docker hands it to /bin/sh -c. */
  const command = /\bCMD (node -e .*)$/s.exec(last(final, 'HEALTHCHECK')!.args)![1]!;
  const servers: Server[] = [];
  let okPort = 0;
  let failingPort = 0;
  let closedPort = 0;

  async function listen(status: number): Promise<number> {
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/livez' ? status : 404, { 'content-type': 'application/json' });
      res.end('{}');
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  beforeAll(async () => {
    okPort = await listen(200);
    failingPort = await listen(503);
    // A port that was free a moment ago: nothing listens there.
    const probe = await listen(200);
    await new Promise<void>((resolve) => servers.pop()!.close(() => resolve()));
    closedPort = probe;
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  function check(env: Record<string, string>): Promise<number | null> {
    return new Promise((resolve) => {
      const child = spawn('/bin/sh', ['-c', command], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
        stdio: 'ignore',
      });
      child.on('exit', (code) => resolve(code));
    });
  }

  it('is healthy when the agent status endpoint answers /livez with 200', async () => {
    expect(await check({ UFDL_AGENT_STATUS_PORT: String(okPort) })).toBe(0);
  });

  it('is unhealthy on a 503', async () => {
    expect(await check({ UFDL_AGENT_STATUS_PORT: String(failingPort) })).toBe(1);
  });

  it('is unhealthy when nothing listens', async () => {
    expect(await check({ UFDL_AGENT_STATUS_PORT: String(closedPort) })).toBe(1);
  });

  it('checks every URL of UFDL_HEALTHCHECK_URL', async () => {
    const ok = `http://127.0.0.1:${okPort}/livez`;
    const failing = `http://127.0.0.1:${failingPort}/livez`;
    expect(await check({ UFDL_HEALTHCHECK_URL: `${ok},${ok}` })).toBe(0);
    expect(await check({ UFDL_HEALTHCHECK_URL: `${ok},${failing}` })).toBe(1);
  });
});

describe('deploy/compose.yaml', () => {
  const compose = read('deploy/compose.yaml');
  const topLevel = (name: string) => {
    const m = new RegExp(`^${name}:\\n((?:[ \\t]+.*\\n|[ \\t]*#.*\\n|\\n)*)`, 'm').exec(compose);
    return m?.[1] ?? '';
  };

  it('runs a server and two agents from the one image', () => {
    const services = [...topLevel('services').matchAll(/^ {2}([\w-]+):/gm)].map((m) => m[1]);
    expect(services).toEqual(['server', 'agent-1', 'agent-2']);
    expect(compose).toMatch(/command: \["serve"\]/);
    expect(compose).toMatch(/command: \["run"\]/);
    expect(compose).toMatch(/UFDL_AGENT_SERVER_URL: http:\/\/server:8000/);
    expect(compose).toMatch(/condition: service_healthy/);
  });

  it('gives agents a stop grace period above the drain timeout plus the kill grace', () => {
    const grace = /x-agent:[\s\S]*?stop_grace_period: (\S+)/.exec(compose)![1]!;
    expect(durationSeconds(grace)).toBeGreaterThan((AGENT_DEFAULTS.drainTimeoutMs + AGENT_DEFAULTS.killGraceMs) / 1000 + 60);
    const drain = /UFDL_AGENT_DRAIN_TIMEOUT: "(\d+)"/.exec(compose)?.[1];
    if (drain) expect(durationSeconds(grace)).toBeGreaterThan(Number(drain) + AGENT_DEFAULTS.killGraceMs / 1000);
  });

  it('puts every agent volume on a declared named volume, journal and work directory apart', () => {
    const declared = [...topLevel('volumes').matchAll(/^ {2}([\w-]+):/gm)].map((m) => m[1]);
    const used = [...compose.matchAll(/^\s+- ([\w-]+):(\/var\/lib\/ufdl-agent(?:\/work)?)$/gm)].map((m) => ({ name: m[1]!, path: m[2]! }));
    expect(used.length).toBeGreaterThanOrEqual(5);
    for (const { name } of used) expect(declared).toContain(name);
    for (const agent of ['agent-1', 'agent-2']) {
      expect(used).toContainEqual({ name: `${agent}-data`, path: '/var/lib/ufdl-agent' });
      expect(used).toContainEqual({ name: `${agent}-work`, path: '/var/lib/ufdl-agent/work' });
    }
  });

  it('keeps the password out of the file and shows a GPU reservation, commented', () => {
    expect(compose).toMatch(/\$\{UFDL_ADMIN_PASSWORD:\?/);
    expect(compose).toMatch(/^\s*#\s+- driver: nvidia$/m);
    expect(compose).toMatch(/^\s*#\s+capabilities: \[gpu\]$/m);
  });
});

describe('deploy/compose.postgres.yaml', () => {
  const override = read('deploy/compose.postgres.yaml');
  /** The block of one service (its indented lines). */
  const service = (name: string) => new RegExp(`^ {2}${name}:\\n((?:[ \\t]+.*\\n|[ \\t]*#.*\\n|\\n)*)`, 'm').exec(override)?.[1] ?? '';

  it('runs two server replicas on one PostgreSQL database and one shared data volume', () => {
    for (const replica of ['server', 'server-2']) {
      const block = service(replica);
      expect(block, replica).toMatch(/<<: \[\*replica-env, \*database-env\]/);
      expect(block, replica).toMatch(/- server-data:\/var\/lib\/ufdl-agent$/m);
      expect(block, replica).toMatch(/postgres:\n\s+condition: service_healthy/);
    }
    expect(service('server-2')).toMatch(/command: \["serve"\]/);
    expect(override).toMatch(/UFDL_AGENT_SERVE_DATABASE_URL: postgres:\/\/ufdl@postgres:5432\/ufdl$/m);
  });

  it('keeps the database password in a secret file, never in the URL or the file', () => {
    const url = /UFDL_AGENT_SERVE_DATABASE_URL: (\S+)/.exec(override)![1]!;
    expect(new URL(url).password).toBe('');
    expect(override).toMatch(/UFDL_AGENT_SERVE_DATABASE_PASSWORD_FILE: \/run\/secrets\/db-password/);
    expect(override).toMatch(/POSTGRES_PASSWORD_FILE: \/run\/secrets\/db-password/);
    expect(override).toMatch(/db-password:\n\s+file: \.\/db-password/);
    expect(read('.gitignore')).toMatch(/^deploy\/db-password$/m);
  });

  it('gives every agent both replicas, in one order, through the configuration key the agent reads', () => {
    for (const agent of ['agent-1', 'agent-2']) {
      expect(service(agent), agent).toMatch(/UFDL_AGENT_SERVER_URL: http:\/\/server:8000,http:\/\/server-2:8000$/m);
    }
    // The keys the override sets are real configuration keys.
    const keys = new Set(KEYS.map((k) => envName(k)));
    for (const name of ['UFDL_AGENT_SERVE_DATABASE_URL', 'UFDL_AGENT_SERVE_DATABASE_PASSWORD_FILE', 'UFDL_AGENT_SERVER_URL']) expect(keys).toContain(name);
  });
});
