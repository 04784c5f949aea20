/**
 * Live job logs end to end: a real agent streams a running job's console output to a real server,
 * followers read it over web-sockets, and what they got equals the job's final `log` output byte for
 * byte — also when the agent is SIGKILLed mid-stream and restarted, and when the server restarts
 * mid-stream. A log over its cap keeps its head and tail on both sides.
 */
import { describe, expect, it } from 'vitest';
import { UfdlClient } from '../../../src/client/api.js';
import { followLogTo, printLogSoFar } from '../../../src/cli/live-log.js';
import {
  createJob,
  downloadOutput,
  ended,
  fastAgentOptions,
  importTemplate,
  shellTemplate,
  spawnAgent,
  startTestAgent,
  started,
  until,
  waitForJob,
} from '../../helpers/agent.js';
import { buildOnce } from '../../helpers/build.js';
import { ADMIN_PASSWORD, ADMIN_USER, restartableServer, startTestServer, type TestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

/** Prints numbered lines on stdout and stderr, slowly enough to be followed while it runs. */
const CHATTY = [
  'i=0',
  'while [ $i -lt ${lines} ]; do',
  '  i=$((i+1))',
  '  echo "line $i of the training run: loss=0.$i"',
  '  if [ $((i % 5)) -eq 0 ]; then echo "warning $i" >&2; fi',
  '  sleep ${pause}',
  'done',
  'echo "UFDL-PROGRESS 1"',
].join('\n');

function chattyTemplate(name = 'chatty'): Record<string, unknown> {
  return shellTemplate(name, CHATTY, {
    lines: { types: ['int'], default: 40, help: 'lines to print' },
    pause: { types: ['str'], default: '0.05', help: 'seconds between lines' },
  });
}

function client(server: TestServer): UfdlClient {
  const c = new UfdlClient({ serverUrl: server.url, username: ADMIN_USER, password: ADMIN_PASSWORD });
  return c;
}

/** Collects everything written to it. */
class Collector {
  readonly chunks: Buffer[] = [];
  write(chunk: Buffer | string): void {
    this.chunks.push(Buffer.from(chunk));
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

describe('live job logs', () => {
  it('streams a running job to three followers, byte for byte the final log output', async () => {
    const server = await startTestServer();
    const template = await importTemplate(server, chattyTemplate());
    await startTestAgent(server);
    const pk = await createJob(server, template);
    const c = client(server);
    try {
      const sinks = [new Collector(), new Collector(), new Collector()];
      const follows = sinks.map((sink) => followLogTo(c, pk, sink));
      // Bytes arrive while the job still runs (not only at its end).
      await until(() => sinks.every((s) => s.bytes.includes('line 3 of')), 20_000, 'the first lines at every follower');
      expect((await waitForJob(server, pk, () => true)).end_time).toBeNull();
      await Promise.all(follows.map((f) => f.done));
      const job = await waitForJob(server, pk, ended);
      expect(job.error_reason).toBeNull();
      const log = await downloadOutput(server, pk, 'log');
      expect(log.toString()).toContain('line 40 of the training run');
      expect(log.toString()).toContain('warning 40');
      for (const sink of sinks) expect(sink.bytes.equals(log)).toBe(true);
      // Read in one go afterwards: the same bytes.
      const whole = new Collector();
      expect(await printLogSoFar(c, pk, whole)).toMatchObject({ complete: true, offset: log.length });
      expect(whole.bytes.equals(log)).toBe(true);
    } finally {
      c.close();
    }
  });

  it('loses and repeats nothing when the agent is SIGKILLed mid-stream and restarted', async () => {
    await buildOnce();
    const server = await startTestServer();
    const template = await importTemplate(server, chattyTemplate());
    const dir = await tempDir('ufdl-live-kill-');
    const options = fastAgentOptions(server, dir);
    const first = spawnAgent(options);
    const pk = await createJob(server, template, { parameter_values: { lines: { value: 60, type: 'int' }, pause: { value: '0.08', type: 'str' } } });
    const c = client(server);
    try {
      const sink = new Collector();
      const follow = followLogTo(c, pk, sink);
      await until(() => sink.bytes.includes('line 10 of'), 30_000, 'line 10 at the follower');
      first.kill('SIGKILL');
      await first.exited;
      // The child keeps printing into its file while no agent runs.
      await new Promise((r) => setTimeout(r, 700));
      spawnAgent(options);
      await follow.done;
      const job = await waitForJob(server, pk, ended, 60_000);
      expect(job.error_reason).toBeNull();
      const log = await downloadOutput(server, pk, 'log');
      expect(log.toString()).toContain('line 60 of the training run');
      expect(sink.bytes.toString()).toBe(log.toString());
      expect(sink.bytes.equals(log)).toBe(true);
    } finally {
      c.close();
    }
  });

  it('loses and repeats nothing when the server restarts mid-stream', async () => {
    const { server, start, stop } = await restartableServer();
    const template = await importTemplate(server, chattyTemplate());
    await startTestAgent(server);
    const pk = await createJob(server, template, { parameter_values: { lines: { value: 60, type: 'int' }, pause: { value: '0.08', type: 'str' } } });
    const c = client(server);
    try {
      const sink = new Collector();
      const problems: string[] = [];
      const follow = followLogTo(c, pk, sink, 0, (m) => problems.push(m));
      await until(() => sink.bytes.includes('line 10 of'), 30_000, 'line 10 at the follower');
      await stop();
      await new Promise((r) => setTimeout(r, 700));
      await start();
      await follow.done;
      expect(problems.some((p) => p.includes('resuming'))).toBe(true);
      const job = await waitForJob(server, pk, ended, 60_000);
      expect(job.error_reason).toBeNull();
      const log = await downloadOutput(server, pk, 'log');
      expect(log.toString()).toContain('line 60 of the training run');
      expect(sink.bytes.equals(log)).toBe(true);
    } finally {
      c.close();
    }
  });

  it('keeps the head and the tail of a log over its cap, the same on the server and in the log output', async () => {
    const server = await startTestServer();
    // 400 KiB of numbered lines against a 64 KiB cap.
    const template = await importTemplate(server, shellTemplate('loud', 'i=0; while [ $i -lt 8000 ]; do i=$((i+1)); printf "%045d\\n" $i; done'));
    await startTestAgent(server, { logMaxBytes: 64 * 1024 });
    const pk = await createJob(server, template);
    const c = client(server);
    try {
      const job = await waitForJob(server, pk, ended, 60_000);
      expect(job.error_reason).toBeNull();
      const log = (await downloadOutput(server, pk, 'log')).toString();
      expect(log.startsWith('0'.repeat(44) + '1\n')).toBe(true);
      expect(log.endsWith(`${'0'.repeat(41)}8000\n`)).toBe(true);
      expect(log).toMatch(/\n\[ufdl-agent: \d+ bytes of output dropped here \(bytes 32768 to \d+\); the log keeps its first and last bytes within logs\.max_bytes = 65536\]\n/);
      expect(log.length).toBeLessThan(64 * 1024 + 200);
      const read = new Collector();
      await printLogSoFar(c, pk, read);
      expect(read.bytes.toString()).toBe(log);
    } finally {
      c.close();
    }
  });

  it('sends only the final log output to a server without live logs', async () => {
    const server = await startTestServer({ extensions: false });
    const template = await importTemplate(server, chattyTemplate());
    await startTestAgent(server);
    const pk = await createJob(server, template, { parameter_values: { lines: { value: 5, type: 'int' } } });
    await waitForJob(server, pk, started);
    const res = await fetch(`${server.url}/v1/jobs/${pk}/log`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    expect(res.status).toBe(404);
    await waitForJob(server, pk, ended);
    expect((await downloadOutput(server, pk, 'log')).toString()).toContain('line 5 of the training run');
  });
});
