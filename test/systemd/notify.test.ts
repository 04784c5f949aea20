/**
 * systemd's notification protocol, on real sockets: the native datagram send to a path and to an
 * abstract name, the notifier's rules (coalesced STATUS lines, no watchdog ping while unhealthy, the
 * variables taken out of the environment jobs inherit), and real `run` and `serve` processes under a
 * NOTIFY_SOCKET that the test listens on, as systemd would: READY=1 from the main pid once the agent
 * is registered and polling, WATCHDOG=1 at half of WATCHDOG_USEC, STATUS= lines with the slots and
 * the job's progress, STOPPING=1 when it drains. The listener is Python (test/fixtures/
 * notify-listener.py): Node.js cannot receive AF_UNIX datagrams.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { JobPhase } from '../../src/agent/job/runner.js';
import { agentStatusLine } from '../../src/systemd/agent-notify.js';
import { ServiceNotifier, START_EXTEND_EVERY_MS, watchdogPingMs } from '../../src/systemd/notifier.js';
import { NotifySendError, notifyTarget, sendDatagram } from '../../src/systemd/notify-socket.js';
import { serverEnv, startCli } from '../cli/commands-support.js';
import { createJob, downloadOutput, importTemplate, REPO, shellTemplate, until, waitForJob } from '../helpers/agent.js';
import { buildOnce } from '../helpers/build.js';
import { api, startTestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp-dir.js';

interface Datagram {
  pid: number | null;
  message: string;
}

interface Listener {
  address: string;
  received: Datagram[];
  /** Datagrams with an assignment `KEY=…` (each datagram may carry several lines). */
  with(key: string): Datagram[];
  waitFor(what: string, match: (d: Datagram) => boolean, timeoutMs?: number): Promise<Datagram>;
}

/** A notification socket the test listens on (`@name` = abstract namespace). */
async function listen(address: string): Promise<Listener> {
  const child: ChildProcess = spawn('python3', [join(REPO, 'test/fixtures/notify-listener.py'), address], { stdio: ['ignore', 'pipe', 'inherit'] });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  const received: Datagram[] = [];
  let listening = false;
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const parsed = JSON.parse(line) as Datagram & { listening?: string };
      if (parsed.listening) listening = true;
      else received.push(parsed);
    }
  });
  await until(() => listening || child.exitCode !== null, 10_000, `the listener on ${address}`);
  if (!listening) throw new Error(`the notification listener did not start (python3 missing?)`);
  const lines = (d: Datagram) => d.message.split('\n');
  return {
    address,
    received,
    with: (key) => received.filter((d) => lines(d).some((l) => l.startsWith(`${key}=`))),
    async waitFor(what, match, timeoutMs = 30_000) {
      let found: Datagram | undefined;
      await until(() => (found = received.find(match)) !== undefined, timeoutMs, `${what}; received so far: ${JSON.stringify(received.map((d) => d.message))}`);
      return found!;
    },
  };
}

const uniqueName = (what: string) => `@ufdl-test-${what}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const silentLog = { info: () => {}, warn: () => {}, error: () => {} };

describe('NOTIFY_SOCKET addresses', () => {
  it('takes a path or an @abstract name, and says why it cannot use anything else', () => {
    expect(notifyTarget(undefined)).toBeUndefined();
    expect(notifyTarget('')).toBeUndefined();
    expect(notifyTarget('/run/systemd/notify')).toEqual({ address: '/run/systemd/notify' });
    expect(notifyTarget('@/org/freedesktop/systemd1/notify')).toEqual({ address: '@/org/freedesktop/systemd1/notify' });
    expect(notifyTarget(`/${'x'.repeat(107)}`)).toHaveProperty('problem', expect.stringMatching(/108 bytes; at most 107/));
    expect(notifyTarget('@')).toHaveProperty('problem');
    expect(notifyTarget('vsock:2:1234')).toHaveProperty('problem', expect.stringMatching(/vsock/));
    expect(notifyTarget('relative/path')).toHaveProperty('problem');
  });

  it('honours WATCHDOG_USEC only for this process (WATCHDOG_PID), pinging at half of it', () => {
    expect(watchdogPingMs({ WATCHDOG_USEC: '60000000' }, 42)).toBe(30_000);
    expect(watchdogPingMs({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '42' }, 42)).toBe(30_000);
    expect(watchdogPingMs({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '41' }, 42)).toBeNull();
    expect(watchdogPingMs({}, 42)).toBeNull();
    expect(watchdogPingMs({ WATCHDOG_USEC: 'soon' }, 42)).toBeNull();
  });
});

describe('the status line', () => {
  const job = (jobPk: number, phase: JobPhase, progress: number | null) => ({ jobPk, slot: 0, phase, progress, pid: 1, startedAt: 0 });
  const slot = (index: number, jobPk: number | null) => ({ index, gpu: null, nodeIndex: index, nodePk: index + 1, jobPk });

  it('lists each slot: a job with its progress, or idle', () => {
    const line = agentStatusLine({ state: 'running', notReady: [], slots: [slot(0, 42), slot(1, null)], jobs: [job(42, 'running', 0.354)] });
    expect(line).toBe('2 slots: job 42 35 %, idle');
    expect(agentStatusLine({ state: 'running', notReady: [], slots: [slot(0, 7)], jobs: [job(7, 'preparing', null)] })).toBe('1 slot: job 7 preparing');
  });

  it('says why a running agent is not ready, but not that a busy one has no free slot', () => {
    const line = agentStatusLine({
      state: 'running',
      notReady: ['no free slot: all 1 slot(s) run a job', 'the server http://s cannot be reached (no answer for 40 s)'],
      slots: [slot(0, 3)],
      jobs: [job(3, 'running', 0.5)],
    });
    expect(line).toBe('1 slot: job 3 50 %; not ready: the server http://s cannot be reached (no answer for 40 s)');
  });

  it('says what starting waits for, and what draining waits for', () => {
    expect(agentStatusLine({ state: 'starting', notReady: ['the agent is starting: logging in, registering, recovering the journal', 'the server http://s cannot be reached (no answer for 12 s)'], slots: [], jobs: [] })).toBe(
      'starting: the server http://s cannot be reached (no answer for 12 s)',
    );
    expect(agentStatusLine({ state: 'draining', notReady: [], slots: [slot(0, 9)], jobs: [job(9, 'running', 0.8)] })).toBe('draining: job 9 80 % (no new jobs)');
    expect(agentStatusLine({ state: 'draining', notReady: [], slots: [slot(0, null)], jobs: [] })).toBe('draining: no job runs');
  });
});

describe('the datagram', () => {
  it('reaches a socket in the file system and one in the abstract namespace, from this pid', async () => {
    const dir = await tempDir('ufdl-notify-');
    for (const listener of [await listen(join(dir, 'notify.sock')), await listen(uniqueName('send'))]) {
      sendDatagram(listener.address, 'READY=1\nSTATUS=hello ünïcode');
      const got = await listener.waitFor('READY=1', (d) => d.message.startsWith('READY=1'));
      expect(got).toEqual({ pid: process.pid, message: 'READY=1\nSTATUS=hello ünïcode' });
    }
  });

  it('fails with the errno name when nobody listens, without blocking', () => {
    const dir = tmpdir();
    expect(() => sendDatagram(join(dir, `no-such-socket-${process.pid}`), 'READY=1')).toThrow(NotifySendError);
    try {
      sendDatagram(uniqueName('nobody'), 'READY=1');
      expect.unreachable();
    } catch (err) {
      expect((err as NotifySendError).code).toBe('ECONNREFUSED');
    }
  });
});

describe('ServiceNotifier', () => {
  it('sends a changed STATUS line at most once a second, the last one always, and identical lines once', async () => {
    const listener = await listen(uniqueName('status'));
    const notifier = new ServiceNotifier({ log: silentLog, env: { NOTIFY_SOCKET: listener.address }, statusIntervalMs: 300 });
    onTestFinished(() => notifier.close());
    notifier.ready('one');
    for (let i = 0; i < 20; i++) notifier.status(`burst ${i}`);
    notifier.status('burst 19');
    await listener.waitFor('the last status of the burst', (d) => d.message === 'STATUS=burst 19');
    notifier.status('burst 19');
    await new Promise((r) => setTimeout(r, 500));
    const statuses = listener.received.map((d) => d.message);
    expect(statuses[0]).toBe('READY=1\nSTATUS=one');
    // The burst collapsed: the first update waited for the interval, then only the last went out.
    expect(statuses.filter((m) => m.startsWith('STATUS=burst'))).toEqual(['STATUS=burst 19']);
  });

  it('started twice (standalone: its server, then its agent), asks for more time on one timer, which READY=1 stops', () => {
    // Before, the second start made a second timer and READY=1 stopped only that one: the first went
    // on asking for more start time for as long as the service ran.
    vi.useFakeTimers();
    onTestFinished(() => void vi.useRealTimers());
    const sent: string[] = [];
    const notifier = new ServiceNotifier({ log: silentLog, env: { NOTIFY_SOCKET: '@ufdl-test-fake' }, send: (_address, message) => void sent.push(message) });
    onTestFinished(() => notifier.close());
    notifier.starting('starting: opening the database');
    notifier.starting('starting: logging in');
    vi.advanceTimersByTime(START_EXTEND_EVERY_MS);
    expect(sent.filter((m) => m.startsWith('EXTEND_TIMEOUT_USEC='))).toHaveLength(2);
    expect(sent).toContain('STATUS=starting: logging in');
    notifier.ready('1 slot: idle');
    vi.advanceTimersByTime(10 * START_EXTEND_EVERY_MS);
    expect(sent.filter((m) => m.startsWith('EXTEND_TIMEOUT_USEC='))).toHaveLength(2);
  });

  it('pets the watchdog only while healthy, and says so', async () => {
    const listener = await listen(uniqueName('watchdog'));
    let healthy = true;
    const errors: string[] = [];
    const notifier = new ServiceNotifier({
      log: { ...silentLog, error: (_o: object, msg?: string) => errors.push(msg ?? '') },
      env: { NOTIFY_SOCKET: listener.address, WATCHDOG_USEC: '200000' },
      healthy: () => ({ ok: healthy, reasons: healthy ? [] : ['journal closed'] }),
    });
    onTestFinished(() => notifier.close());
    notifier.ready('up');
    await until(() => listener.with('WATCHDOG').length >= 3, 10_000, 'three pings');
    healthy = false;
    await until(() => errors.length > 0, 10_000, 'the unhealthy log line');
    const before = listener.with('WATCHDOG').length;
    await new Promise((r) => setTimeout(r, 600));
    expect(listener.with('WATCHDOG').length).toBe(before);
    expect(errors[0]).toMatch(/not petting the systemd watchdog/);
  });

  it('takes NOTIFY_SOCKET and the watchdog variables out of the environment children inherit', () => {
    const saved = { ...process.env };
    onTestFinished(() => {
      for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    });
    process.env.NOTIFY_SOCKET = uniqueName('inherit');
    process.env.WATCHDOG_USEC = '1000000';
    process.env.WATCHDOG_PID = String(process.pid);
    const notifier = new ServiceNotifier({ log: silentLog });
    expect(notifier.enabled).toBe(true);
    expect(notifier.watchdogPingMs).toBe(500);
    expect(process.env.NOTIFY_SOCKET).toBeUndefined();
    expect(process.env.WATCHDOG_USEC).toBeUndefined();
    expect(process.env.WATCHDOG_PID).toBeUndefined();
    notifier.close();
  });

  it('does nothing without NOTIFY_SOCKET', () => {
    const notifier = new ServiceNotifier({ log: silentLog, env: {}, send: () => expect.unreachable() });
    notifier.starting('x');
    notifier.ready('x');
    notifier.status('y');
    notifier.stopping('z');
    expect(notifier.enabled).toBe(false);
  });
});

describe('a real agent and server under a notification socket', () => {
  beforeAll(() => buildOnce(), 240_000);

  it('run: READY=1 once registered and polling, watchdog pings, progress in STATUS, STOPPING=1 on drain', async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-notify-agent-');
    const release = join(dir, 'release');
    const template = await importTemplate(
      server,
      shellTemplate(
        'notify-progress',
        [
          'echo "notify=${NOTIFY_SOCKET:-unset} watchdog=${WATCHDOG_USEC:-unset}" > "$UFDL_OUTPUT_DIR/env.txt"',
          'echo "UFDL-PROGRESS 0.35"',
          `while [ ! -e '${release}' ]; do sleep 0.1; done`,
        ].join('\n'),
      ),
    );
    const listener = await listen(uniqueName('agent'));
    const agent = startCli(['run'], {
      env: serverEnv(server, {
        NOTIFY_SOCKET: listener.address,
        WATCHDOG_USEC: '1000000',
        UFDL_AGENT_WORK_DIR: join(dir, 'work'),
        UFDL_AGENT_STATUS_PORT: '-1',
        UFDL_AGENT_POLL_INTERVAL: '0.2',
        UFDL_AGENT_MIN_FREE_DISK: '0',
        UFDL_AGENT_NODE_IP: '127.0.0.1',
        UFDL_AGENT_SLOTS: '1',
        UFDL_AGENT_LOG_FORMAT: 'json',
      }),
      timeoutMs: 120_000,
    });
    onTestFinished(() => {
      agent.child.kill('SIGKILL');
    });

    const ready = await listener.waitFor('READY=1', (d) => d.message.startsWith('READY=1'));
    // From the main process (NotifyAccess=main is enough), with the first status line.
    expect(ready.pid).toBe(agent.child.pid);
    expect(ready.message).toBe('READY=1\nSTATUS=1 slot: idle');
    // Registered before it said so.
    const nodes = await api(server.url, 'POST', '/v1/nodes/list', { token: server.adminToken, json: {} });
    expect((nodes.body as unknown[]).length).toBe(1);
    // While starting it asked for more time.
    expect(listener.received.findIndex((d) => d.message.startsWith('EXTEND_TIMEOUT_USEC='))).toBeLessThan(listener.received.indexOf(ready));
    await until(() => listener.with('WATCHDOG').length >= 3, 20_000, 'three watchdog pings (every 0.5 s)');

    const pk = await createJob(server, template);
    const progress = await listener.waitFor('the progress in STATUS', (d) => d.message === `STATUS=1 slot: job ${pk} 35 %`);
    expect(progress.pid).toBe(agent.child.pid);

    agent.child.kill('SIGTERM');
    const stopping = await listener.waitFor('STOPPING=1', (d) => d.message.startsWith('STOPPING=1'));
    expect(stopping.message).toBe(`STOPPING=1\nSTATUS=draining: job ${pk} 35 % (no new jobs)`);
    await writeFile(release, '');
    const result = await agent.result;
    expect(result.code, result.stderr).toBe(0);
    const job = await waitForJob(server, pk, (j) => j.end_time !== null);
    expect(job.error_reason).toBeNull();
    // The job did not inherit the agent's notification socket or watchdog.
    expect((await downloadOutput(server, pk, 'env.txt')).toString().trim()).toBe('notify=unset watchdog=unset');
  });

  it('run: while the status endpoint waits for the resolver, the status line says so, naming the host', async () => {
    // Before, it said "starting: logging in, registering, recovering the journal" for the whole wait.
    // The resolver is test/fixtures/dns-lookup-fails.cjs: `flaky.test` never answers (EAI_AGAIN).
    const dir = await tempDir('ufdl-notify-run-dns-');
    const listener = await listen(uniqueName('run-dns'));
    const agent = startCli(['run', '--work-dir', join(dir, 'work')], {
      env: {
        NOTIFY_SOCKET: listener.address,
        NODE_OPTIONS: `--require ${join(REPO, 'test/fixtures/dns-lookup-fails.cjs')}`,
        UFDL_TEST_DNS_FAILS: 'flaky.test=EAI_AGAIN',
        UFDL_AGENT_SERVER_URL: 'http://127.0.0.1:9',
        UFDL_AGENT_SERVER_PASSWORD: 'x',
        UFDL_AGENT_STATUS_HOST: 'flaky.test',
        UFDL_AGENT_STATUS_PORT: '0',
        UFDL_AGENT_LOG_FORMAT: 'json',
      },
      timeoutMs: 60_000,
    });
    onTestFinished(() => {
      agent.child.kill('SIGKILL');
    });
    const waiting = await listener.waitFor('the resolver wait in STATUS', (d) => d.message.includes('STATUS=starting: the status endpoint is waiting'));
    expect(waiting.pid).toBe(agent.child.pid);
    expect(waiting.message).toMatch(/^STATUS=starting: the status endpoint is waiting for the resolver to answer for flaky\.test \(\d+ tr(y|ies) failed; next try in \d+ s, gives up in \d+ min\)$/);
    agent.child.kill('SIGTERM');
    expect((await agent.result).code).toBe(0);
    expect(listener.with('READY')).toEqual([]);
  });

  it('serve: READY=1 once listening, STOPPING=1 on SIGTERM; a socket in the file system', async () => {
    const dir = await tempDir('ufdl-notify-serve-');
    const listener = await listen(join(dir, 'notify.sock'));
    const serve = startCli(['serve', '--data', join(dir, 'data'), '--port', '0'], {
      env: { NOTIFY_SOCKET: listener.address, UFDL_ADMIN_PASSWORD: 'pw-for-notify-test', UFDL_AGENT_LOG_FORMAT: 'json' },
      timeoutMs: 60_000,
    });
    onTestFinished(() => {
      serve.child.kill('SIGKILL');
    });
    const ready = await listener.waitFor('READY=1', (d) => d.message.startsWith('READY=1'));
    expect(ready.pid).toBe(serve.child.pid);
    const url = /STATUS=serving on (http:\/\/\S+)/.exec(ready.message)?.[1];
    expect(url).toBeDefined();
    expect((await fetch(`${url}/livez`)).status).toBe(200);
    serve.child.kill('SIGTERM');
    await listener.waitFor('STOPPING=1', (d) => d.message.startsWith('STOPPING=1'));
    expect((await serve.result).code).toBe(0);
    expect(existsSync(join(dir, 'data'))).toBe(true);
  });

  it('serve: while it waits for the resolver, the status line says so, naming the host', async () => {
    // Before, it said "starting: opening the database" for the whole wait, up to 10 minutes at boot.
    // The resolver is test/fixtures/dns-lookup-fails.cjs: `flaky.test` never answers (EAI_AGAIN).
    const dir = await tempDir('ufdl-notify-serve-dns-');
    const listener = await listen(uniqueName('serve-dns'));
    const serve = startCli(['serve', '--data', join(dir, 'data'), '--port', '0'], {
      env: {
        NOTIFY_SOCKET: listener.address,
        NODE_OPTIONS: `--require ${join(REPO, 'test/fixtures/dns-lookup-fails.cjs')}`,
        UFDL_TEST_DNS_FAILS: 'flaky.test=EAI_AGAIN',
        UFDL_AGENT_SERVE_HOST: 'flaky.test',
        UFDL_ADMIN_PASSWORD: 'pw-for-notify-test',
        UFDL_AGENT_LOG_FORMAT: 'json',
      },
      timeoutMs: 60_000,
    });
    onTestFinished(() => {
      serve.child.kill('SIGKILL');
    });
    const waiting = await listener.waitFor('the resolver wait in STATUS', (d) => d.message.startsWith('STATUS=starting: waiting'));
    expect(waiting.pid).toBe(serve.child.pid);
    expect(waiting.message).toMatch(/^STATUS=starting: waiting for the resolver to answer for flaky\.test \(\d+ tr(y|ies) failed; next try in \d+ s, gives up in \d+ min\)$/);
    serve.child.kill('SIGTERM');
    expect((await serve.result).code).toBe(0);
    expect(listener.with('READY')).toEqual([]);
  });

  // Before, standalone said nothing to systemd until its agent existed: `systemctl status` showed no
  // line through the server's start (the resolver wait, the migrations) and the template import, and
  // systemd's start timeout was not extended meanwhile.
  it('standalone: says what it does from its first moment, READY=1 only once the server answers and the agent polls', async () => {
    const dir = await tempDir('ufdl-notify-standalone-');
    const release = join(dir, 'release');
    const listener = await listen(uniqueName('standalone'));
    // Held between the server listening and the agent being created (test/fixtures/hold-read.cjs).
    const standalone = startCli(['standalone', '--data', join(dir, 'data'), '--port', '0'], {
      env: {
        NOTIFY_SOCKET: listener.address,
        NODE_OPTIONS: `--require ${join(REPO, 'test/fixtures/hold-read.cjs')}`,
        UFDL_TEST_HOLD_READ: '/server/admin-password',
        UFDL_TEST_HOLD_READ_UNTIL: release,
        UFDL_AGENT_STATUS_PORT: '-1',
        UFDL_AGENT_MIN_FREE_DISK: '0',
        UFDL_AGENT_LOG_FORMAT: 'json',
      },
      timeoutMs: 120_000,
    });
    onTestFinished(() => {
      standalone.child.kill('SIGKILL');
    });
    const first = await listener.waitFor('the first notification', () => true);
    expect(first.pid).toBe(standalone.child.pid);
    expect(first.message).toMatch(/^EXTEND_TIMEOUT_USEC=\d+\nSTATUS=starting: opening the database$/);
    const listening = await listener.waitFor('the server in STATUS', (d) => d.message.startsWith('STATUS=starting: the server listens on'));
    const url = /listens on (http:\/\/\S+);/.exec(listening.message)?.[1];
    expect((await fetch(`${url}/livez`)).status).toBe(200);
    expect(listener.with('READY')).toEqual([]);
    await writeFile(release, '');
    const ready = await listener.waitFor('READY=1', (d) => d.message.startsWith('READY=1'));
    expect(ready.pid).toBe(standalone.child.pid);
    expect(ready.message).toBe('READY=1\nSTATUS=1 slot: idle');
    standalone.child.kill('SIGTERM');
    await listener.waitFor('STOPPING=1', (d) => d.message.startsWith('STOPPING=1'));
    expect((await standalone.result).code).toBe(0);
  });

  it('standalone: while its server waits for the resolver, the status line says so; a stop then says STOPPING=1', async () => {
    const dir = await tempDir('ufdl-notify-standalone-dns-');
    const listener = await listen(uniqueName('standalone-dns'));
    const standalone = startCli(['standalone', '--data', join(dir, 'data'), '--port', '0'], {
      env: {
        NOTIFY_SOCKET: listener.address,
        NODE_OPTIONS: `--require ${join(REPO, 'test/fixtures/dns-lookup-fails.cjs')}`,
        UFDL_TEST_DNS_FAILS: 'flaky.test=EAI_AGAIN',
        UFDL_AGENT_SERVE_HOST: 'flaky.test',
        UFDL_AGENT_STATUS_PORT: '-1',
        UFDL_AGENT_LOG_FORMAT: 'json',
      },
      timeoutMs: 60_000,
    });
    onTestFinished(() => {
      standalone.child.kill('SIGKILL');
    });
    const waiting = await listener.waitFor('the resolver wait in STATUS', (d) => d.message.startsWith('STATUS=starting: waiting'));
    expect(waiting.pid).toBe(standalone.child.pid);
    expect(waiting.message).toMatch(/^STATUS=starting: waiting for the resolver to answer for flaky\.test \(\d+ tr(y|ies) failed; next try in \d+ s, gives up in \d+ min\)$/);
    standalone.child.kill('SIGTERM');
    await listener.waitFor('STOPPING=1', (d) => d.message.startsWith('STOPPING=1'));
    expect((await standalone.result).code).toBe(0);
    expect(listener.with('READY')).toEqual([]);
  });
});
