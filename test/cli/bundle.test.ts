/**
 * The CLI as shipped: `dist/cli/main.js`, bundled by scripts/build-cli.mjs, not tsc's per-module
 * output. A short command (`jobs`) runs from `short-commands.cjs` and loads nothing else but node's
 * built-ins — not a package from node_modules (commander is inside, the JSON client speaks
 * node:http), not the chunks of the other commands, not the server or the agent, and not
 * child_process (commander's, loaded only when used); a lazily loaded command (`serve`) starts from
 * its chunks and finds the files the package ships (the dashboard, package.json) from there.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce } from '../helpers/build.js';
import { CAPABILITIES_PATH } from '../../src/protocol/wire.js';
import { ADMIN_PASSWORD, ADMIN_USER, api, freePort, spawnServe } from '../helpers/server.js';
import { MAIN, ROOT, cli, serverEnv, serverWithTemplates } from './commands-support.js';
import { tempDir } from '../helpers/temp-dir.js';

beforeAll(buildOnce, 240_000);

const BUNDLE_DIR = join(ROOT, 'dist', 'cli');
const RECORDER = pathToFileURL(join(ROOT, 'test', 'fixtures', 'record-modules.mjs')).href;
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Run the CLI with every module it loads recorded; resolves with its result and those URLs. */
async function cliRecorded(args: string[], env: Record<string, string | undefined>) {
  const log = join(await tempDir('ufdl-modules-'), 'modules.txt');
  const result = await cli(args, { env: { ...env, NODE_OPTIONS: `--import=${RECORDER}`, UFDL_TEST_MODULE_LOG: log } });
  const modules = (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((url) => url !== '' && url !== RECORDER);
  return { result, modules };
}

describe('the shipped CLI', () => {
  it('is the bundle: dist/cli/ holds main.js, the short commands and the chunks of the others, no per-module output', () => {
    const entries = readdirSync(BUNDLE_DIR).sort();
    expect(entries).toEqual(['chunks', 'commands', 'main.js', 'main.js.map', 'short-commands.cjs', 'short-commands.cjs.map']);
    expect(readdirSync(join(BUNDLE_DIR, 'commands')).sort()).toEqual(['all.js', 'all.js.map']);
    expect(readFileSync(MAIN, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
    expect(readdirSync(join(BUNDLE_DIR, 'chunks')).filter((f) => f.endsWith('.js')).length).toBeGreaterThan(0);
  });

  it('answers `jobs` from a real server loading only its own files and node built-ins', async () => {
    const server = await serverWithTemplates();
    const env = serverEnv(server);
    const submitted = await cli(['submit', 'shell-hello'], { env });
    expect(submitted.code, submitted.stderr).toBe(0);
    const pk = Number(submitted.stdout.trim());

    const { result, modules } = await cliRecorded(['jobs', '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    expect((JSON.parse(result.stdout) as { pk: number }[]).map((job) => job.pk)).toEqual([pk]);

    // main.js alone through the module loader; the short commands' bundle is compiled by main.js itself.
    const imported = modules.filter((url) => !url.startsWith('require:') && !url.startsWith('node:'));
    expect(imported).toEqual([pathToFileURL(MAIN).href]);
    const required = modules.filter((url) => url.startsWith('require:')).map((url) => url.slice('require:'.length));
    expect(required.filter((id) => !id.startsWith('node:')), 'packages and files').toEqual([]);
    expect(required).toContain('node:http');
    expect(required).not.toContain('node:child_process');
  });

  it('prints the package version', async () => {
    const result = await cli(['--version']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(VERSION);
  });

  it('starts `serve` from its lazily loaded chunk, with the dashboard and the version found from the package root', async () => {
    const dataDir = await tempDir('ufdl-bundle-serve-');
    const server = await spawnServe(dataDir, await freePort());
    const page = await fetch(`${server.url}/ui/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    const login = await api<{ access: string }>(server.url, 'POST', '/v1/auth/obtain', { json: { username: ADMIN_USER, password: ADMIN_PASSWORD } });
    const capabilities = await api<{ version: string }>(server.url, 'GET', CAPABILITIES_PATH, { token: login.body.access });
    expect(capabilities.status).toBe(200);
    expect(capabilities.body.version).toBe(VERSION);
  });
});
