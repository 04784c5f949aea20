/**
 * `ufdl-agent status [--status-url URL] [--journal FILE] [--json]`: what the local agent is doing.
 * First its status endpoint (`/status.json`, default from `agent.status_host`/`agent.status_port`);
 * when that does not answer, its journal, opened read-only (never blocks the agent): what it runs,
 * unfinished entries, last contact with the server. Neither → one line and status 69.
 */
import type { Command } from 'commander';
import type { AgentStatus } from '../../agent/agent.js';
import type { JobRecord, JournalStats } from '../../agent/journal/index.js';
import { journalFileOf } from '../agent-options.js';
import { CliError, oneLineUsageErrors, usageError } from '../cli-error.js';
import { loadConfig, type EffectiveConfig } from '../config/load.js';
import { EXIT } from '../exit-codes.js';
import { commonFlags, type CommonFlags } from '../flags.js';
import { formatAge, formatDuration, formatPercent, printJson, printTable } from '../output.js';

interface StatusFlags extends CommonFlags {
  statusUrl?: string;
  journal?: string;
  json?: boolean;
}

/** How long the status endpoint may take: it is on loopback and answers from memory. */
const ENDPOINT_TIMEOUT_MS = 2_000;

export function registerStatus(program: Command): void {
  commonFlags(
    oneLineUsageErrors(program.command('status'))
      .description("What the local agent is doing: its status endpoint, else its journal (read-only)")
      .option('--status-url <url>', 'base URL of the agent status endpoint (default from agent.status_host and agent.status_port: http://127.0.0.1:8001)')
      .option('--journal <file>', 'journal file (default: agent.journal, or journal.sqlite3 beside agent.work_dir)')
      .option('--json', 'print JSON: {"source": "agent"|"journal", …}'),
  ).action(async (flags: StatusFlags) => {
    const config = loadConfig({ file: flags.config, flags: { 'agent.journal': flags.journal } });
    const endpoint = statusUrl(flags, config);

    let endpointProblem = 'the status endpoint is turned off (agent.status_port = -1)';
    if (endpoint !== undefined) {
      const answer = await readEndpoint(endpoint);
      if ('status' in answer) {
        if (flags.json) printJson({ source: 'agent', url: endpoint, status: answer.status });
        else printAgentStatus(endpoint, answer.status);
        return;
      }
      endpointProblem = `the agent status endpoint ${endpoint}/status.json does not answer (${answer.problem})`;
    }

    const path = journalFileOf(config);
    let stats: JournalStats;
    let unfinished: JobRecord[];
    let recent: JobRecord[];
    try {
      // Loaded only here: the native SQLite module is not needed when the endpoint answers.
      const { openReadOnly } = await import('../../agent/journal/index.js');
      const reader = openReadOnly(path);
      try {
        stats = reader.stats();
        unfinished = reader.unfinished();
        recent = reader.recent(10);
      } finally {
        reader.close();
      }
    } catch (err) {
      throw new CliError(EXIT.UNAVAILABLE, `no agent status: ${endpointProblem}, and its journal cannot be read (${(err as Error).message}); is the agent running on this machine?`);
    }
    if (flags.json) {
      printJson({ source: 'journal', endpointProblem, journal: stats, unfinished, recent });
      return;
    }
    process.stdout.write(`${endpointProblem}; from the journal instead:\n`);
    printJournalStatus(stats, unfinished, recent);
  });
}

function statusUrl(flags: StatusFlags, config: EffectiveConfig): string | undefined {
  if (flags.statusUrl !== undefined) {
    try {
      const url = new URL(flags.statusUrl);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
    } catch {
      throw usageError(`--status-url must be an http(s) URL, got ${JSON.stringify(flags.statusUrl)}`);
    }
    return flags.statusUrl.replace(/\/+$/, '');
  }
  const port = Number(config.values['agent.status_port']);
  if (port < 0) return undefined;
  let host = String(config.values['agent.status_host'] ?? '127.0.0.1');
  // An agent listening on every address is reached on loopback.
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

async function readEndpoint(base: string): Promise<{ status: unknown } | { problem: string }> {
  try {
    const response = await fetch(`${base}/status.json`, { signal: AbortSignal.timeout(ENDPOINT_TIMEOUT_MS), headers: { accept: 'application/json' } });
    const text = await response.text();
    if (!response.ok) return { problem: `HTTP ${response.status}` };
    try {
      return { status: JSON.parse(text) as unknown };
    } catch {
      return { problem: 'the answer is not JSON' };
    }
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if ((err as Error).name === 'TimeoutError') return { problem: `no answer within ${ENDPOINT_TIMEOUT_MS / 1000} s` };
    return { problem: cause?.code ?? cause?.message ?? (err as Error).message };
  }
}

/**
 * The agent's snapshot, whatever its exact shape: scalars as `key: value`, nested objects indented,
 * arrays of objects as tables of their scalar fields. Timestamps get their age appended.
 */
function printAgentStatus(url: string, status: unknown): void {
  process.stdout.write(`agent status from ${url}/status.json\n`);
  if (isAgentStatus(status)) printKnownStatus(status);
  else process.stdout.write(render(status, ''));
}

/** The agent's own snapshot (`Agent.getStatus()`), recognised by its shape. */
function isAgentStatus(value: unknown): value is AgentStatus {
  const v = value as Partial<AgentStatus> | null;
  return v !== null && typeof v === 'object' && typeof v.state === 'string' && Array.isArray(v.slots) && Array.isArray(v.jobs);
}

function printKnownStatus(status: AgentStatus): void {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const since = status.startedAt ? `, up ${formatAge(status.startedAt)}` : '';
  out(`agent: pid ${status.pid}, ${status.state}, ${status.ready ? 'ready' : 'not ready'}${since}`);
  if (!status.ready && status.notReady.length > 0) out(`not ready because: ${status.notReady.join('; ')}`);
  out(`server: ${status.serverUrl}`);
  // Several addresses: each, and how the last failure of the others went (an older agent sends none).
  const servers = status.servers?.addresses ?? [];
  if (servers.length > 1) {
    for (const s of servers) {
      const failed = s.lastFailureAt ? `, last failed ${formatAge(s.lastFailureAt)} ago: ${s.lastFailure}` : '';
      out(`  ${s.current ? '*' : ' '} ${s.url}${failed}`);
    }
    out(`  switches: ${status.servers!.switches}`);
  }
  const silent = typeof status.serverSilentMs === 'number' ? ` (${formatDuration(status.serverSilentMs)} ago)` : '';
  out(`last contact with the server: ${status.lastServerContactAt ?? 'never'}${status.lastServerContactAt ? silent : ''}`);
  if (status.loop?.lastPollError) out(`last poll error: ${status.loop.lastPollError}`);
  const busy = status.slots.filter((slot) => slot.jobPk !== null).length;
  const retiring = status.slots.filter((slot) => slot.retiring === true).length;
  const nodeBusy = status.slots.filter((slot) => slot.nodeBusy === true).length;
  const waits = nodeBusy > 0 ? `, ${nodeBusy} waiting for its node's job in another slot` : '';
  out(`slots: ${status.slots.length} (${busy} busy${retiring > 0 ? `, ${retiring} leaving when its job ends` : ''}${waits})`);
  if (status.slots.length > 0) {
    printTable(
      [{ title: 'slot', align: 'right' }, { title: 'gpu', align: 'right' }, { title: 'node', align: 'right' }, { title: 'job', align: 'right' }],
      status.slots.map((slot) => [`${slot.index}${slot.retiring === true ? ' (leaving)' : slot.nodeBusy === true ? ' (waiting)' : ''}`, slot.gpu === null ? '-' : String(slot.gpu), slot.nodePk === null ? '-' : String(slot.nodePk), slot.jobPk === null ? '-' : String(slot.jobPk)]),
    );
  }
  if (status.jobs.length === 0) out('running now: nothing');
  else {
    out('running now:');
    printTable(
      [{ title: 'job', align: 'right' }, { title: 'slot', align: 'right' }, { title: 'phase' }, { title: 'progress', align: 'right' }, { title: 'pid', align: 'right' }, { title: 'running for', align: 'right' }],
      status.jobs.map((job) => [
        String(job.jobPk),
        String(job.slot),
        job.phase,
        job.progress === null ? '-' : formatPercent(job.progress),
        job.pid === null ? '-' : String(job.pid),
        job.startedAt === null ? '-' : formatDuration(Date.now() - job.startedAt),
      ]),
    );
  }
  if (status.journal) out(`journal: ${status.journal.path} (${status.journal.unfinished} unfinished)`);
}

function render(value: unknown, indent: string): string {
  if (value === null || typeof value !== 'object') return `${indent}${scalar(value)}\n`;
  if (Array.isArray(value)) {
    if (value.length === 0) return `${indent}(none)\n`;
    if (value.every((item) => item !== null && typeof item === 'object' && !Array.isArray(item))) {
      const keys = [...new Set(value.flatMap((item) => Object.keys(item as object).filter((k) => isScalar((item as Record<string, unknown>)[k]))))];
      if (keys.length > 0) {
        const rows = value.map((item) => keys.map((k) => scalar((item as Record<string, unknown>)[k])));
        const lines = formatRows(keys, rows);
        return lines.map((line) => `${indent}${line}\n`).join('');
      }
    }
    return value.map((item) => render(item, `${indent}- `)).join('');
  }
  let out = '';
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    if (isScalar(item)) out += `${indent}${key}: ${scalar(item, key)}\n`;
    else out += `${indent}${key}:\n${render(item, `${indent}  `)}`;
  }
  return out || `${indent}(empty)\n`;
}

function formatRows(keys: string[], rows: string[][]): string[] {
  const widths = keys.map((k, i) => Math.max(k.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(keys), ...rows.map(line)];
}

function isScalar(value: unknown): boolean {
  return value === null || typeof value !== 'object';
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/;

function scalar(value: unknown, key = ''): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string' && ISO.test(value)) return `${value} (${formatAge(value)} ago)`;
  // Epoch milliseconds in fields named like times (`lastPollAt`).
  if (typeof value === 'number' && /(At|Time|_at|_time)$/.test(key) && value > 1e12) return `${new Date(value).toISOString()} (${formatAge(new Date(value).toISOString())} ago)`;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function printJournalStatus(stats: JournalStats, unfinished: JobRecord[], recent: JobRecord[]): void {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(`journal: ${stats.path}`);
  if (stats.holder) {
    out(`agent: pid ${stats.holder.pid} on ${stats.holder.hostname} since ${stats.holder.acquiredAt} (${stats.holder.alive ? 'running' : 'not running'})`);
  } else {
    out('agent: not running (no process holds the journal)');
  }
  out(`last contact with the server: ${stats.lastContactAt === null ? 'never' : `${stats.lastContactAt} (${formatAge(stats.lastContactAt)} ago)`}`);
  for (const server of stats.servers) out(`server ${server.serverUrl}: node ${server.nodePk ?? '(not registered)'}`);
  out(`jobs: ${stats.jobs.total} in the journal, ${stats.jobs.unfinished} unfinished`);
  const pending = Object.entries(stats.outputs).filter(([state, n]) => state !== 'uploaded' && n > 0);
  if (pending.length > 0) out(`outputs not yet uploaded: ${pending.map(([state, n]) => `${n} ${state}`).join(', ')}`);
  const running = unfinished.filter((job) => job.state === 'running');
  out(`running now: ${running.length === 0 ? 'nothing' : running.map((job) => `job ${job.jobPk}${job.slot === null ? '' : ` (slot ${job.slot})`}`).join(', ')}`);
  if (unfinished.length > 0) {
    out('unfinished:');
    printJobs(unfinished);
  }
  const done = recent.filter((job) => job.state === 'done');
  if (done.length > 0) {
    out('recently done:');
    printJobs(done);
  }
}

function printJobs(jobs: JobRecord[]): void {
  printTable(
    [{ title: 'job', align: 'right' }, { title: 'state' }, { title: 'since', align: 'right' }, { title: 'slot', align: 'right' }, { title: 'pid', align: 'right' }, { title: 'attempts', align: 'right' }, { title: 'server' }],
    jobs.map((job) => [
      String(job.jobPk),
      job.state,
      formatAge(job.stateSince),
      job.slot === null ? '-' : String(job.slot),
      job.pid === null ? '-' : String(job.pid),
      String(job.attempts),
      job.serverUrl,
    ]),
  );
}
