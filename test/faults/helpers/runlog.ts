/**
 * The run log: how the campaign sees, from outside the agent and the server, when each job's child
 * really ran.
 *
 * Every child of the campaign's template is a /bin/sh script that appends (O_APPEND, one short
 * `echo` per line, so lines never interleave) to one shared file:
 *
 *   start <pk> <pid> <ns>      when it begins
 *   tick  <pk> <pid> <ns>      after each step (every `tick` seconds)
 *   end   <pk> <pid> <ns>      when it has written its output and is about to exit 0
 *   overlap <pk> <pid> <ns>    when, at its start, another live process already holds the job's lock
 *
 * `<ns>` is `date +%s%N` (wall clock, one machine). A run is identified by its pid. Its interval is
 * [start, end] when it ended, else [start, last tick] — a run killed by SIGKILL writes nothing more,
 * so the interval is a lower bound of how long it lived and overlaps found from it are certain.
 *
 * The lock (`flock -n` on `<locks>/<pk>.lock`, held on fd 9 for the child's whole life and released by
 * the kernel when the last process of the run dies, even by SIGKILL) catches what ticks cannot: two
 * runs alive at once however short the overlap. Either finding means the job ran twice at once.
 */
import { readFileSync } from 'node:fs';
import { runTemplate } from '../../helpers/templates.js';

export interface RunLogTemplateOptions {
  name: string;
  runLog: string;
  locksDir: string;
  /** Seconds per tick. @default 0.2 */
  tickSeconds?: number;
  /** Ticks when the job does not say. @default 3 */
  defaultTicks?: number;
}

/**
 * A `Run` template for `ufdl_agent.Shell` whose child records its run (see above), reports progress
 * after each tick, and leaves one output `result.txt` containing its job pk. The job parameter
 * `ticks` (int) sets how long it runs.
 */
export function runLogTemplate(o: RunLogTemplateOptions): Record<string, unknown> {
  const tick = o.tickSeconds ?? 0.2;
  const script = [
    'set -u',
    `runlog=${shellQuote(o.runLog)}`,
    'pk="$UFDL_JOB_PK"',
    `exec 9>>${shellQuote(o.locksDir)}/"$pk.lock"`,
    'if ! flock -n 9; then echo "overlap $pk $$ $(date +%s%N)" >> "$runlog"; fi',
    'echo "start $pk $$ $(date +%s%N)" >> "$runlog"',
    'ticks=${ticks}',
    'i=0',
    'while [ "$i" -lt "$ticks" ]; do',
    `  sleep ${tick}`,
    '  i=$((i + 1))',
    '  echo "tick $pk $$ $(date +%s%N)" >> "$runlog"',
    '  if [ "$i" -lt 10 ]; then echo "UFDL-PROGRESS 0.$i"; fi',
    'done',
    'printf \'%s\\n\' "$pk" > "$UFDL_OUTPUT_DIR/result.txt"',
    'echo "end $pk $$ $(date +%s%N)" >> "$runlog"',
    '',
  ].join('\n');
  return runTemplate(o.name, 'ufdl_agent.Shell', {
    ticks: { types: ['int'], default: o.defaultTicks ?? 3, help: 'steps of the job' },
    body: { types: ['str'], default: script, const: true, help: 'the script' },
  });
}

export function ticksParam(ticks: number): Record<string, { value: unknown; type: string }> {
  return { ticks: { value: ticks, type: 'int' } };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface Run {
  pk: number;
  pid: number;
  startNs: bigint;
  /** The end line, or the last tick: the latest moment the run is known to have been alive. */
  lastSeenNs: bigint;
  ended: boolean;
  ticks: number;
}

export interface RunLog {
  runs: Run[];
  /** Runs by job pk, in start order. */
  byJob: Map<number, Run[]>;
  /** `overlap` lines: a run found another live run of its job. */
  overlaps: { pk: number; pid: number }[];
  /** Every pid that ran a job (to kill stragglers at the end). */
  pids: Set<number>;
  malformed: string[];
}

export function readRunLog(file: string): RunLog {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // no run yet
  }
  const runs = new Map<string, Run>();
  const overlaps: { pk: number; pid: number }[] = [];
  const pids = new Set<number>();
  const malformed: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^(start|tick|end|overlap) (\d+) (\d+) (\d+)$/.exec(line);
    if (m === null) {
      malformed.push(line);
      continue;
    }
    const [, kind, pkText, pidText, nsText] = m;
    const pk = Number(pkText);
    const pid = Number(pidText);
    const ns = BigInt(nsText!);
    pids.add(pid);
    const key = `${pk}/${pid}`;
    if (kind === 'overlap') {
      overlaps.push({ pk, pid });
    } else if (kind === 'start') {
      runs.set(key, { pk, pid, startNs: ns, lastSeenNs: ns, ended: false, ticks: 0 });
    } else {
      const run = runs.get(key);
      if (run === undefined) {
        malformed.push(`${line} (no start)`);
        continue;
      }
      if (ns > run.lastSeenNs) run.lastSeenNs = ns;
      if (kind === 'end') run.ended = true;
      else run.ticks++;
    }
  }
  const byJob = new Map<number, Run[]>();
  for (const run of runs.values()) {
    const list = byJob.get(run.pk) ?? [];
    list.push(run);
    byJob.set(run.pk, list);
  }
  for (const list of byJob.values()) list.sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
  return { runs: [...runs.values()], byJob, overlaps, pids, malformed };
}

/**
 * Pairs of runs of one job that were certainly alive at the same time: an `overlap` line, or a run
 * starting before the previous run's last sign of life. Empty means no job ran twice at once.
 */
/** The jobs of `pks` that did not run exactly once, to the end (empty = fine). */
export function notRunExactlyOnce(log: RunLog, pks: readonly number[]): string[] {
  const problems: string[] = [];
  for (const pk of pks) {
    const list = log.byJob.get(pk) ?? [];
    if (list.length !== 1) problems.push(`job ${pk}: ${list.length} runs (pids ${list.map((r) => r.pid).join(', ')})`);
    else if (!list[0]!.ended) problems.push(`job ${pk}: its only run did not reach its end`);
  }
  return problems;
}

export function concurrentRuns(log: RunLog): string[] {
  const problems: string[] = [];
  for (const o of log.overlaps) problems.push(`job ${o.pk}: run pid ${o.pid} started while another run held the job's lock`);
  for (const [pk, runs] of log.byJob) {
    for (let i = 1; i < runs.length; i++) {
      // Every earlier run, not only the previous one: a long first run may outlive a short second one.
      for (let j = 0; j < i; j++) {
        if (runs[i]!.startNs <= runs[j]!.lastSeenNs) {
          const ms = Number(runs[j]!.lastSeenNs - runs[i]!.startNs) / 1e6;
          problems.push(`job ${pk}: run pid ${runs[i]!.pid} started ${ms.toFixed(1)} ms before run pid ${runs[j]!.pid} was last seen alive`);
        }
      }
    }
  }
  return problems;
}

/** A one-line summary: runs, jobs run more than once, runs killed before their end. */
export function runLogSummary(log: RunLog): string {
  const multi = [...log.byJob.values()].filter((r) => r.length > 1).length;
  const unfinished = log.runs.filter((r) => !r.ended).length;
  return `${log.runs.length} runs of ${log.byJob.size} jobs; ${multi} jobs ran more than once (one after the other); ${unfinished} runs stopped before their end`;
}
