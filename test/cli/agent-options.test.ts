/**
 * The configuration keys and the agent's options are one set of settings: with no configuration the
 * CLI starts the agent with the agent's own defaults, every key reaches its option (seconds become
 * milliseconds where the option counts them), and every option is either set by a key or on purpose
 * not configurable.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_DEFAULTS, defaultJournalFile, resolveAgentOptions, type ResolvedAgentOptions } from '../../src/agent/options.js';
import { agentOptionsFrom, journalFileOf } from '../../src/cli/agent-options.js';
import { KEYS, keyId, type KeyDef } from '../../src/cli/config/keys.js';
import { loadConfig } from '../../src/cli/config/load.js';

const ENV = { UFDL_AGENT_SERVER_PASSWORD: 'secret' };

/** The agent option each configuration key sets. */
const OPTION_OF_KEY: Readonly<Record<string, keyof ResolvedAgentOptions>> = {
  'server.url': 'serverUrls',
  'server.failback_after': 'failbackAfterMs',
  'server.username': 'username',
  'server.timeout': 'requestTimeoutMs',
  'agent.work_dir': 'workDir',
  'agent.journal': 'journalFile',
  'agent.slots': 'slots',
  'agent.poll_interval': 'pollScheduleS',
  'agent.error_backoff': 'errorBackoffS',
  'agent.wait': 'waitSeconds',
  'agent.cancel_check_interval': 'cancelCheckIntervalMs',
  'agent.progress_interval': 'progressIntervalMs',
  'agent.drain_timeout': 'drainTimeoutMs',
  'agent.kill_grace': 'killGraceMs',
  'agent.keep_job_dirs': 'keepJobDirs',
  'agent.node_ip': 'nodeIp',
  'agent.node_index': 'nodeIndex',
  'agent.max_restarts': 'maxRestarts',
  'agent.fence_margin': 'fenceMarginMs',
  'agent.status_host': 'status',
  'agent.status_port': 'status',
  'agent.min_free_disk': 'minFreeDiskBytes',
  'agent.hardware_interval': 'hardwareIntervalMs',
  'agent.docker': 'docker',
  'agent.docker_network': 'dockerNetwork',
  'agent.docker_pull': 'dockerPull',
  'logs.live': 'liveLogs',
  'logs.max_bytes': 'logMaxBytes',
};

/** Keys of the agent's sections that set no agent option, and why. */
const NOT_OPTIONS: Readonly<Record<string, string>> = {
  'server.password': 'a secret, read by secretValue',
  'server.password_file': 'the secret from a file',
  'server.token_cache': "the CLI's, not the agent's",
  'agent.log_level': "the CLI's logger",
};

/** Agent options that no key sets, and why. */
const NO_KEY: Readonly<Record<string, string>> = {
  password: 'server.password or server.password_file, through secretValue',
  skipFailedForMs: 'tuned for tests only',
  heartbeatIntervalMs: 'derived from the fence threshold on servers that need it',
  authRetryS: 'tuned for tests only',
  watchdogMs: 'derived from the wait and request timeouts',
  serverUrl: 'the first of server.url (serverUrls)',
};

const resolved = (flags: Record<string, unknown> = {}) => resolveAgentOptions(agentOptionsFrom(loadConfig({ env: ENV, flags })));

/** A value of the key's type that differs from its default. */
function otherValue(def: KeyDef): unknown {
  switch (keyId(def)) {
    case 'server.url':
      return 'http://ufdl.example:8000';
    case 'agent.work_dir':
      return '/srv/ufdl/work';
    case 'agent.journal':
      return '/srv/ufdl/journal.db';
    case 'agent.node_ip':
      return '192.0.2.7';
    case 'agent.status_host':
      return '0.0.0.0';
    case 'agent.docker':
      return 'off';
    case 'agent.docker_network':
      return 'none';
    case 'agent.docker_pull':
      return 'always';
  }
  switch (def.type) {
    case 'string':
      return `${String(def.default)}-other`;
    case 'int':
      return Number(def.default) + 1;
    case 'number':
      return Number(def.default) + 1.5;
    case 'bool':
      return !def.default;
    case 'seconds-list':
      return [...(def.default as number[]), 7];
    case 'url-list':
      return [...(def.default as string[]), 'http://other.example:8000'];
  }
}

describe('the configuration keys and the agent options', () => {
  it('start the agent with its own defaults when nothing is configured', () => {
    expect(resolved()).toEqual(
      resolveAgentOptions({ serverUrl: 'http://127.0.0.1:8000', username: 'admin', password: 'secret', workDir: resolve('./data/agent/work') }),
    );
    expect(resolved().status).toEqual(AGENT_DEFAULTS.status);
  });

  it('have an option for every key of the agent, and a key for every option but a few named ones', () => {
    const agentKeys = KEYS.filter((def) => def.section === 'agent' || def.section === 'logs' || def.section === 'server').map(keyId);
    expect(agentKeys.filter((id) => !(id in OPTION_OF_KEY) && !(id in NOT_OPTIONS))).toEqual([]);
    const options = Object.keys(resolved());
    const reached = new Set(Object.values(OPTION_OF_KEY));
    expect(options.filter((option) => !reached.has(option as keyof ResolvedAgentOptions) && !(option in NO_KEY))).toEqual([]);
  });

  it.each(Object.entries(OPTION_OF_KEY))('%s reaches %s', (id, option) => {
    const def = KEYS.find((k) => keyId(k) === id)!;
    const value = otherValue(def);
    const before = resolved();
    const after = resolved({ [id]: value });
    const changed = (Object.keys(after) as (keyof ResolvedAgentOptions)[]).filter((k) => JSON.stringify(after[k]) !== JSON.stringify(before[k]));
    // The journal's default follows the work directory; the first server address is the server's name.
    const expected = id === 'agent.work_dir' ? ['journalFile', 'workDir'] : id === 'server.url' ? ['serverUrl', 'serverUrls'] : [option];
    expect(changed.sort()).toEqual(expected);
    if (def.type === 'number' && option.endsWith('Ms')) expect(after[option]).toBe(Math.round((value as number) * 1000));
  });

  it('takes several server addresses as a list, from a string with commas, and keeps one as before', () => {
    expect(resolved({ 'server.url': 'http://a.example:8000, http://b.example:8000/' })).toMatchObject({
      serverUrl: 'http://a.example:8000',
      serverUrls: ['http://a.example:8000', 'http://b.example:8000'],
    });
    expect(resolved({ 'server.url': ['https://a.example/ufdl/', 'https://b.example/ufdl'] }).serverUrls).toEqual(['https://a.example/ufdl', 'https://b.example/ufdl']);
    const env = resolveAgentOptions(agentOptionsFrom(loadConfig({ env: { ...ENV, UFDL_AGENT_SERVER_URL: 'http://a:1,http://b:2' } })));
    expect(env.serverUrls).toEqual(['http://a:1', 'http://b:2']);
    expect(resolved({ 'server.url': 'http://lb.example:8000/' })).toMatchObject({ serverUrl: 'http://lb.example:8000', serverUrls: ['http://lb.example:8000'] });
  });

  it('refuses a bad server address, naming the key, the source and the address', () => {
    const load = (env: Record<string, string>) => () => loadConfig({ env: { ...ENV, ...env } });
    expect(load({ UFDL_AGENT_SERVER_URL: 'http://a:1,htp//b' })).toThrow(
      /^Configuration key 'server\.url' from env UFDL_AGENT_SERVER_URL: URL 2 must be an absolute http\(s\) URL, got "htp\/\/b"/,
    );
    expect(load({ UFDL_AGENT_SERVER_URL: 'http://a:1,ftp://b' })).toThrow(/URL 2 must be an http or https URL, got "ftp:\/\/b"/);
    expect(load({ UFDL_AGENT_SERVER_URL: 'http://a:1,http://a:1/' })).toThrow(/the list names "http:\/\/a:1\/" twice/);
    expect(load({ UFDL_AGENT_SERVER_URL: 'http://user:pw@a:1' })).toThrow(/the URL must not contain credentials/);
    expect(() => loadConfig({ env: ENV, flags: { 'server.url': [] } })).toThrow(/'server\.url' from flag: expected an http\(s\) URL, or several/);
    expect(() => resolveAgentOptions({ serverUrl: ['http://a:1', 'nope'], username: 'u', password: 'p', workDir: '/tmp/w' })).toThrow(/Agent option 'serverUrl\[1\]'/);
  });

  it('wait at most as long as a node timer can (about 24.8 days): a longer drain timeout or kill grace is that long, not at once', () => {
    const base = { serverUrl: 'http://127.0.0.1:8000', username: 'u', password: 'p', workDir: '/tmp/w' };
    const far = resolveAgentOptions({ ...base, drainTimeoutMs: 1e12, killGraceMs: 3e9, cancelCheckIntervalMs: 2 ** 31, pollScheduleS: [5, 1e7] });
    expect(far).toMatchObject({ drainTimeoutMs: 2 ** 31 - 1, killGraceMs: 2 ** 31 - 1, cancelCheckIntervalMs: 2 ** 31 - 1 });
    expect(far.pollScheduleS).toEqual([5, (2 ** 31 - 1) / 1000]);
    // Within the limit, a value is kept as it is.
    expect(resolveAgentOptions({ ...base, drainTimeoutMs: 2 ** 31 - 1, killGraceMs: 1 }).drainTimeoutMs).toBe(2 ** 31 - 1);
  });

  it('puts the journal beside the work directory unless agent.journal names it, in one place', () => {
    const config = loadConfig({ env: ENV, flags: { 'agent.work_dir': '/srv/ufdl/work/' } });
    expect(journalFileOf(config)).toBe('/srv/ufdl/journal.sqlite3');
    expect(resolved({ 'agent.work_dir': '/srv/ufdl/work/' }).journalFile).toBe(defaultJournalFile('/srv/ufdl/work/'));
    expect(journalFileOf(loadConfig({ env: ENV, flags: { 'agent.journal': '' } }))).toBe(defaultJournalFile(resolve('./data/agent/work')));
  });
});
