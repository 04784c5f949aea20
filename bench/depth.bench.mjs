// The queue at depth: a server whose database holds 1,000,000 ended jobs (each with a log output) and
// 10,000 waiting ones, against an empty server, both running at once and measured in alternation.
// Goals: the poll query p99 < 10 ms; `ufdl-agent jobs` < 200 ms; create-job and acquire as fast as
// on the empty server.
//
// Measured on each server: the agent's poll (`POST /v1/jobs/list` with its filter and
// `X-UFDL-Limit`, as a node) over HTTP; the same poll as the server computes it (its own query and
// job JSON code, in this process on a read-only connection to the server's file, in bursts); the
// poll without a limit (what the reference worker asks: the whole queue); `ufdl-agent jobs` as a
// whole process — with the tokens the previous command kept (what a person typing commands gets),
// and without (`--no-token-cache`: a login, a deliberately slow password hash, each time) — and what
// of it is not the list: `ufdl-agent jobs --help` (starting node and loading the command) and
// `node -e 0` (starting node alone, the floor); create-job; acquire; a /metrics scrape.
// `--baseline-cli FILE` also runs another build's `ufdl-agent jobs` in the same rounds (a
// before/after comparison at the same load). When the environment sets NODE_EXTRA_CA_CERTS, node
// parses that file before it runs anything (~70 ms of CPU for a system bundle of ~150 certificates
// here): `ufdl-agent jobs` and `node -e 0` are then also measured without it, what a machine without
// such a file sees.
//
// `--cli-only` measures the CLI alone (the "Queue at depth: the CLI" row): no poll, create-job,
// acquire or /metrics samples. `--data DIR` (with --cli-only) keeps the deep server's data in DIR:
// filled on the first run, reused as it is by the next ones, never removed.
//
//   node bench/depth.bench.mjs [--ended 1000000] [--waiting 10000] [--samples 300] [--cli-runs 10] [--baseline-cli dist/cli/main.js] [--cli-only [--data DIR]]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { pollFilter } from '../dist/protocol/filter.js';
import { prepareJobList } from '../dist/server/store/lists.js';
import { fillQueue } from './lib/deep-queue.mjs';
import { machineLabel, percentile, recordResult, today } from './lib/machine.mjs';
import { ADMIN, CLI, call } from './lib/processes.mjs';
import { cleanup, importShellTemplate, loadAverage, positive, session, startTrackedServe, tempDir } from './lib/rig.mjs';

const { values: args } = parseArgs({
  options: {
    ended: { type: 'string', default: '1000000' },
    waiting: { type: 'string', default: '10000' },
    samples: { type: 'string', default: '300' },
    'cli-runs': { type: 'string', default: '10' },
    'baseline-cli': { type: 'string' },
    'cli-only': { type: 'boolean', default: false },
    data: { type: 'string' },
  },
});
const ENDED = positive('ended', args.ended);
const WAITING = positive('waiting', args.waiting);
const SAMPLES = positive('samples', args.samples);
const CLI_RUNS = positive('cli-runs', args['cli-runs']);
const BASELINE_CLI = args['baseline-cli'];
const CLI_ONLY = args['cli-only'];
const DATA_DIR = args.data;
if (DATA_DIR !== undefined && !CLI_ONLY) throw new Error('--data goes with --cli-only (a reused database has the previous runs\' test jobs in it)');
/** The CA file node reads at every start, if the environment names one. */
const EXTRA_CA = process.env.NODE_EXTRA_CA_CERTS || undefined;
// What the agent asks for: its skipped jobs (none here) plus 32 candidates (src/agent/agent-loop.ts).
const POLL_LIMIT = 32;
const GOALS = { pollP99Ms: 10, cliMs: 200 };

const POLL_FILTER = pollFilter();

const ms = () => performance.now();

async function timed(fn) {
  const t0 = ms();
  await fn();
  return ms() - t0;
}

/** A server with a template, two nodes and (when `deep`) the history written into its file. */
async function prepare(deep) {
  const env = { UFDL_AGENT_SERVE_ACCESS_TOKEN_LIFETIME: '3600' };
  const kept = deep ? DATA_DIR : undefined;
  if (kept !== undefined && existsSync(join(kept, 'ufdl.sqlite3'))) {
    console.log(`reusing the deep server's data in ${kept}`);
    return prepared(await startTrackedServe({ dataDir: kept, keepData: true, env }), {}, deep);
  }
  if (kept !== undefined) mkdirSync(kept, { recursive: true });
  let server = await startTrackedServe({ ...(kept === undefined ? {} : { dataDir: kept, keepData: true }), env });
  const token = await session(server.url)();
  const templatePk = await importShellTemplate(server.url, token, 'bench-depth', 'true');
  const history = await call(server.url, 'POST', '/v1/nodes/create', { token, json: { ip: '10.9.0.1', index: 0, cpu_mem: 1 << 30 } });
  const node = await call(server.url, 'POST', '/v1/nodes/create', { token, json: { ip: '10.9.0.2', index: 0, cpu_mem: 1 << 30 } });
  if (deep) {
    await server.stop();
    const t0 = ms();
    fillQueue(join(server.dataDir, 'ufdl.sqlite3'), { templatePk, nodePk: history.pk, ended: ENDED, waiting: WAITING });
    console.log(`wrote ${ENDED} ended and ${WAITING} waiting jobs in ${((ms() - t0) / 1000).toFixed(1)} s`);
    server = await startTrackedServe({ dataDir: server.dataDir, keepData: kept !== undefined, env });
  }
  return prepared(server, { template: templatePk, node: node.pk }, deep);
}

async function prepared(server, { template, node }, deep) {
  const getToken = session(server.url);
  const sql = new Database(join(server.dataDir, 'ufdl.sqlite3'), { readonly: true });
  const poll = prepareJobList(sql, POLL_FILTER);
  // The CLI's token cache of this server (its own, so that the run leaves the user's alone).
  const cacheDir = await tempDir('ufdl-bench-cache-');
  const s = { server, getToken, template, node, sql, poll, deep, cacheDir, samples: { poll: [], pollSql: [], pollSqlAll: [], pollAll: [], create: [], acquire: [], cli: [], cliCold: [], cliStart: [], nodeAlone: [], cliNoCa: [], nodeAloneNoCa: [], baseline: [], login: [], metrics: [] } };
  await runCli(s); // logs in and keeps the tokens: every measured warm run uses them
  return s;
}

function request(s, method, path, { json, node, headers = {} } = {}) {
  return s.getToken().then((token) => call(s.server.url, method, path, { token, json, headers, ...(node === undefined ? {} : { nodeId: node }) }));
}

function runCli(s, args = ['jobs'], cli = CLI, { withoutExtraCa = false } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = ms();
    const base = { ...process.env };
    if (withoutExtraCa) delete base.NODE_EXTRA_CA_CERTS;
    const child = spawn(process.execPath, cli === null ? args : [cli, ...args], {
      env: { ...base, XDG_CACHE_HOME: s.cacheDir, UFDL_AGENT_SERVER_URL: s.server.url, UFDL_AGENT_SERVER_USERNAME: ADMIN.username, UFDL_AGENT_SERVER_PASSWORD: ADMIN.password },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => (code === 0 ? resolve(ms() - t0) : reject(new Error(`ufdl-agent jobs exited ${code}: ${err}`))));
  });
}

/** One round of every measurement on server `s`; the caller alternates the servers. */
async function round(s, share) {
  if (!CLI_ONLY) await serverRound(s, share);
  s.samples.cli.push(await runCli(s));
  s.samples.cliCold.push(await runCli(s, ['jobs', '--no-token-cache']));
  s.samples.cliStart.push(await runCli(s, ['jobs', '--help']));
  s.samples.nodeAlone.push(await runCli(s, ['-e', '0'], null));
  if (EXTRA_CA) {
    s.samples.cliNoCa.push(await runCli(s, ['jobs'], CLI, { withoutExtraCa: true }));
    s.samples.nodeAloneNoCa.push(await runCli(s, ['-e', '0'], null, { withoutExtraCa: true }));
  }
  if (BASELINE_CLI) s.samples.baseline.push(await runCli(s, ['jobs'], BASELINE_CLI));
}

/** The server's side: poll, create-job, acquire, the poll's own query, /metrics, a login. */
async function serverRound(s, share) {
  for (let i = 0; i < share; i++) {
    s.samples.poll.push(await timed(() => request(s, 'POST', '/v1/jobs/list', { json: POLL_FILTER, node: s.node, headers: { 'x-ufdl-limit': String(POLL_LIMIT) } })));
    const created = [];
    s.samples.create.push(await timed(async () => created.push(await request(s, 'POST', `/v1/job-templates/${s.template}/create-job`, { json: { input_values: {}, parameter_values: {}, description: 'depth' } }))));
    s.samples.acquire.push(await timed(() => request(s, 'GET', `/v1/jobs/${created[0].pk}/acquire`, { node: s.node })));
  }
  // The server's own poll computation, in a burst (nothing else of this process in between).
  for (let i = 0; i < share * 10; i++) {
    const t0 = ms();
    s.poll.run(POLL_LIMIT);
    s.samples.pollSql.push(ms() - t0);
  }
  // The heavy ones, a few per round.
  s.samples.pollAll.push(await timed(() => request(s, 'POST', '/v1/jobs/list', { json: POLL_FILTER, node: s.node })));
  const t0 = ms();
  s.poll.run();
  s.samples.pollSqlAll.push(ms() - t0);
  s.samples.metrics.push(await timed(() => fetch(`${s.server.url}/metrics`).then((r) => r.text())));
  s.samples.login.push(await timed(() => call(s.server.url, 'POST', '/v1/auth/obtain', { json: ADMIN })));
}

const summary = (v) => {
  const sorted = [...v].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1), n: sorted.length };
};
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));

try {
  const load0 = await loadAverage();
  const deep = await prepare(true);
  const empty = await prepare(false);
  const rounds = CLI_RUNS;
  const share = Math.ceil(SAMPLES / rounds);
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first, so neither always meets the machine fresher.
    for (const s of r % 2 ? [empty, deep] : [deep, empty]) await round(s, share);
  }
  const load1 = await loadAverage();
  const rows = {};
  for (const s of [deep, empty]) rows[s.deep ? 'deep' : 'empty'] = Object.fromEntries(Object.entries(s.samples).filter(([, v]) => v.length > 0).map(([k, v]) => [k, summary(v)]));
  console.log(`\nqueue at depth — ${ENDED} ended + ${WAITING} waiting jobs vs an empty server — ${machineLabel()} — load ${load0} → ${load1}`);
  console.log('measure                          deep p50 / p99 / max ms        empty p50 / p99 / max ms');
  const labels = {
    poll: `agent poll (limit ${POLL_LIMIT}), HTTP`,
    pollSql: `agent poll, server code alone`,
    pollAll: 'poll without limit, HTTP',
    pollSqlAll: 'poll without limit, server code',
    create: 'create-job',
    acquire: 'acquire',
    cli: 'ufdl-agent jobs (process)',
    cliCold: '  --no-token-cache (logs in)',
    cliStart: '  of it: node + command (--help)',
    nodeAlone: '  of it: node alone (node -e 0)',
    cliNoCa: 'jobs without NODE_EXTRA_CA_CERTS',
    nodeAloneNoCa: '  node -e 0 without it',
    login: '  the login (HTTP)',
    ...(BASELINE_CLI ? { baseline: `  baseline build's jobs` } : {}),
    metrics: '/metrics scrape',
  };
  for (const [k, label] of Object.entries(labels)) {
    const d = rows.deep[k];
    const e = rows.empty[k];
    if (d === undefined) continue; // not measured in this run
    console.log(`${label.padEnd(33)}${`${fmt(d.p50)} / ${fmt(d.p99)} / ${fmt(d.max)}`.padEnd(31)}${fmt(e.p50)} / ${fmt(e.p99)} / ${fmt(e.max)}   (n=${d.n})`);
  }
  // The poll as the server computes it is the query the goal is about; the HTTP round trip adds the
  // same on both servers (see the empty server's column).
  const cliMet = rows.deep.cli.max < GOALS.cliMs;
  const met = CLI_ONLY ? cliMet : rows.deep.pollSql.p99 < GOALS.pollP99Ms && cliMet;
  console.log(`goals: ${CLI_ONLY ? '' : `poll p99 < ${GOALS.pollP99Ms} ms, `}ufdl-agent jobs < ${GOALS.cliMs} ms: ${met ? 'MET' : 'NOT MET'}`);
  const pair = (k) => `${fmt(rows.deep[k].p50)}/${fmt(rows.deep[k].p99)} (${fmt(rows.empty[k].p50)}/${fmt(rows.empty[k].p99)})`;
  if (!CLI_ONLY) await recordResult(
    'Queue at depth',
    ['date', 'machine', 'load avg before → after', 'ended + waiting jobs', 'agent poll p50/p99 ms: HTTP, server code (empty server)', 'poll without limit p50/p99 ms: HTTP, server code', 'ufdl-agent jobs p50 / max ms (empty); of it node + command, login p50', 'create-job p50/p99 ms (empty)', 'acquire p50/p99 ms (empty)', '/metrics p50 ms (empty)', 'met'],
    [
      today(),
      machineLabel(),
      `${load0} → ${load1}`,
      `${ENDED} + ${WAITING}`,
      `${pair('poll')}, ${pair('pollSql')}`,
      `${fmt(rows.deep.pollAll.p50)}/${fmt(rows.deep.pollAll.p99)}, ${fmt(rows.deep.pollSqlAll.p50)}/${fmt(rows.deep.pollSqlAll.p99)}`,
      `${fmt(rows.deep.cli.p50)} / ${fmt(rows.deep.cli.max)} (${fmt(rows.empty.cli.p50)} / ${fmt(rows.empty.cli.max)}); ${fmt(rows.deep.cliStart.p50)}, ${fmt(rows.deep.login.p50)}`,
      pair('create'),
      pair('acquire'),
      `${fmt(rows.deep.metrics.p50)} (${fmt(rows.empty.metrics.p50)})`,
      met ? 'yes' : 'no',
    ],
  );
  const cliPair = (k) => `${fmt(rows.deep[k].p50)} / ${fmt(rows.deep[k].max)} (${fmt(rows.empty[k].p50)} / ${fmt(rows.empty[k].max)})`;
  await recordResult(
    'Queue at depth: the CLI',
    ['date', 'machine', 'load avg before → after', 'ufdl-agent jobs p50 / max ms, tokens kept (empty server)', '--no-token-cache (a login each)', 'jobs --help', 'node -e 0', 'baseline build', 'jobs / node -e 0 p50 without NODE_EXTRA_CA_CERTS (empty server)', 'runs'],
    [
      today(),
      machineLabel(),
      `${load0} → ${load1}`,
      cliPair('cli'),
      cliPair('cliCold'),
      cliPair('cliStart'),
      cliPair('nodeAlone'),
      BASELINE_CLI ? cliPair('baseline') : '—',
      EXTRA_CA ? `${fmt(rows.deep.cliNoCa.p50)} / ${fmt(rows.deep.nodeAloneNoCa.p50)} (${fmt(rows.empty.cliNoCa.p50)} / ${fmt(rows.empty.nodeAloneNoCa.p50)})` : '— (not set)',
      String(rows.deep.cli.n),
    ],
  );
  deep.sql.close();
  empty.sql.close();
} finally {
  await cleanup();
}
