import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/cli/config/errors.js';
import { KEYS, envName, keyId } from '../../src/cli/config/keys.js';
import { describeConfig, loadConfig, secretValue } from '../../src/cli/config/load.js';
import { tempDir } from '../helpers/temp-dir.js';

async function tempFile(name: string, text: string): Promise<string> {
  const dir = await tempDir('ufdl-config-');
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

describe('configuration', () => {
  it('applies default < file < environment < flag, and records each source', async () => {
    const file = await tempFile('agent.toml', '[agent]\nslots = 2\nwait = 5\nkill_grace = 3\n');
    const config = loadConfig({
      file,
      env: { UFDL_AGENT_SLOTS: '3', UFDL_AGENT_WAIT: '7' },
      flags: { 'agent.slots': 4 },
    });
    expect(config.values['agent.slots']).toBe(4);
    expect(config.sources['agent.slots']).toBe('flag');
    expect(config.values['agent.wait']).toBe(7);
    expect(config.sources['agent.wait']).toBe('env UFDL_AGENT_WAIT');
    expect(config.values['agent.kill_grace']).toBe(3);
    expect(config.sources['agent.kill_grace']).toBe(`file ${file}`);
    expect(config.values['agent.drain_timeout']).toBe(600);
    expect(config.sources['agent.drain_timeout']).toBe('default');
  });

  it('names the key, the source and the expectation in validation errors', async () => {
    const file = await tempFile('bad.toml', '[agent]\nslots = "many"\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(new RegExp(`'agent.slots' from file ${file.replaceAll('/', '\\/')}: expected an integer`));
    expect(() => loadConfig({ env: { UFDL_AGENT_KEEP_JOB_DIRS: 'maybe' } })).toThrow(/'agent.keep_job_dirs' from env UFDL_AGENT_KEEP_JOB_DIRS: expected true or false/);
    expect(() => loadConfig({ env: { UFDL_AGENT_POLL_INTERVAL: '10,x' } })).toThrow(/poll_interval.*list/);
    // A zero would poll (or retry after an error) again at once, for good.
    expect(() => loadConfig({ env: { UFDL_AGENT_POLL_INTERVAL: '0' } })).toThrow(/'agent.poll_interval' from env UFDL_AGENT_POLL_INTERVAL: expected a non-empty list of positive seconds/);
    expect(() => loadConfig({ env: { UFDL_AGENT_ERROR_BACKOFF: '10,0' } })).toThrow(/'agent.error_backoff' .*positive seconds/);
  });

  it('refuses unknown keys and sections instead of ignoring them', async () => {
    const typo = await tempFile('typo.toml', '[agent]\nslot = 2\n');
    expect(() => loadConfig({ file: typo, env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ file: typo, env: {} })).toThrow(/Unknown configuration key 'agent.slot'/);
    const flat = await tempFile('flat.toml', 'slots = 2\n');
    expect(() => loadConfig({ file: flat, env: {} })).toThrow(/must be a \[section\]/);
    const broken = await tempFile('broken.toml', '[agent\n');
    expect(() => loadConfig({ file: broken, env: {} })).toThrow(/not valid TOML/);
    expect(() => loadConfig({ file: '/nonexistent/ufdl.toml', env: {} })).toThrow(/Cannot read configuration file/);
  });

  it('never echoes a secret in the error of a file that does not parse or a value of the wrong type', async () => {
    // An unquoted or unterminated password is a syntax error on the very line that holds it.
    for (const [name, text] of [
      ['unquoted.toml', '[server]\nusername = "worker"\npassword = hunter2secret\n'],
      ['unterminated.toml', '[server]\npassword = "hunter2secret\n'],
      ['number.toml', '[server]\npassword = 731953\n'],
      ['choice.toml', '[serve]\nmetrics_token = ["hunter2secret"]\n'],
      ['launcher.conf', 'password = hunter2secret\n[backend]\nurl = http://a:8000\n'],
    ] as const) {
      const file = await tempFile(name, text);
      let message = '';
      try {
        loadConfig({ file, env: {} });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message, name).not.toBe('');
      expect(message, name).not.toMatch(/hunter2secret|731953/);
      expect(message, name).toContain(file);
    }
  });

  it('reads secrets from *_file keys and never prints them', async () => {
    const secret = await tempFile('pw', 's3cret-value\nignored second line\n');
    const config = loadConfig({ env: { UFDL_AGENT_SERVER_PASSWORD_FILE: secret } });
    expect(secretValue(config, 'server.password')).toBe('s3cret-value');
    const direct = loadConfig({ env: { UFDL_AGENT_SERVER_PASSWORD: 'direct-secret' } });
    const shown = JSON.stringify(describeConfig(direct));
    expect(shown).not.toContain('direct-secret');
    expect(describeConfig(direct).find((r) => r.key === 'server.password')).toMatchObject({ value: '(set)', source: 'env UFDL_AGENT_SERVER_PASSWORD' });
  });

  it('accepts the reference admin variables for the embedded server', () => {
    const config = loadConfig({ env: { UFDL_ADMIN_USER: 'root', UFDL_ADMIN_PASSWORD: 'pw-from-env' } });
    expect(config.values['serve.admin_user']).toBe('root');
    expect(secretValue(config, 'serve.admin_password')).toBe('pw-from-env');
    // An empty direct variable (a unit's `Environment=UFDL_AGENT_SERVE_ADMIN_PASSWORD=`) is unset, as
    // everywhere else: it does not hide the alias, so no password is generated instead.
    const emptied = loadConfig({ env: { UFDL_AGENT_SERVE_ADMIN_PASSWORD: '', UFDL_ADMIN_PASSWORD: 'pw-from-env' } });
    expect(secretValue(emptied, 'serve.admin_password')).toBe('pw-from-env');
  });

  it("reads the reference launcher's INI file, with working ${VAR} substitution", async () => {
    const ini = await tempFile(
      'job-launcher.conf',
      [
        '[general]',
        'debug = true',
        'keep_job_dirs = false',
        'compression = 8',
        'poll = simple',
        'poll_backenderror_wait = 10, 30, 60',
        'gpu_id = 1',
        'cancel_check_wait = 10',
        '[backend]',
        'url = http://ufdl:8000',
        'user = ${UFDL_TEST_USER}',
        'password = pa%%ss',
        '[docker]',
        'work_dir = /tmp/ufdl-job-launcher/workdir',
        'cache_dir = /tmp/ufdl-job-launcher/cache',
        'use_sudo = false',
        'ask_sudo_pw = false',
        'use_current_user = true',
        '[poll_simple]',
        'interval = 5,10',
      ].join('\n'),
    );
    process.env.UFDL_TEST_USER = 'worker';
    const config = loadConfig({ file: ini, env: {} });
    delete process.env.UFDL_TEST_USER;
    expect(config.values['server.url']).toEqual(['http://ufdl:8000']);
    expect(config.values['server.username']).toBe('worker');
    expect(secretValue(config, 'server.password')).toBe('pa%ss');
    expect(config.values['agent.node_index']).toBe(1);
    expect(config.values['agent.poll_interval']).toEqual([5, 10]);
    expect(config.values['agent.error_backoff']).toEqual([10, 30, 60]);
    expect(config.values['agent.work_dir']).toBe('/tmp/ufdl-job-launcher/workdir');
  });

  it('documents every key with its default and environment variable in config/*.toml', async () => {
    const agent = await readFile('config/agent.toml', 'utf8');
    const server = await readFile('config/server.toml', 'utf8');
    for (const def of KEYS) {
      const text = def.section === 'serve' ? server : agent;
      expect(text, keyId(def)).toContain(`# ${def.name} = `);
      expect(text, keyId(def)).toContain(envName(def));
    }
    // The shipped files, loaded as they are, change nothing.
    const config = loadConfig({ file: 'config/agent.toml', env: {} });
    expect(Object.values(config.sources).every((s) => s === 'default')).toBe(true);
  });
});
