/**
 * What the agent says about itself (STYLE rule 3): the plain {@link AgentStatus} snapshot for
 * `/status.json` and `ufdl-agent status`, and the reasons it is not ready (for `/readyz`).
 */
import type { Capabilities } from '../protocol/wire.js';
import type { JobRunner } from './job-runner.js';
import type { AgentState } from './lifecycle.js';
import type { PollLoop } from './loop.js';

export interface AgentStatus {
  state: AgentState;
  ready: boolean;
  notReady: string[];
  pid: number;
  startedAt: string;
  serverUrl: string;
  capabilities: { wakeup: boolean; lostAfterSeconds: number | null; websocketAuth: boolean } | null | undefined;
  lastServerContactAt: string | null;
  serverSilentMs: number;
  slots: { index: number; gpu: number | null; nodeIndex: number; nodePk: number | null; jobPk: number | null }[];
  jobs: JobRunner['status'][];
  loop: ReturnType<PollLoop['getStatus']> | null;
  fence: { thresholdMs: number; fencedCount: number } | null;
  journal: { path: string; unfinished: number } | null;
}

export interface ReadinessFacts {
  state: AgentState;
  authProblem: string | null;
  reachable: boolean;
  silentMs: number;
  fenced: boolean;
  lowDisk: string | null;
}

/** Why the agent cannot take jobs now; empty when it is ready. */
export function notReadyReasons(f: ReadinessFacts): string[] {
  const reasons: string[] = [];
  if (f.state === 'starting') reasons.push('starting (logging in, registering, recovering)');
  else if (f.state !== 'running') reasons.push(f.state);
  if (f.authProblem) reasons.push(f.authProblem);
  if (!f.reachable) reasons.push(`server unreachable for ${Math.round(f.silentMs / 1000)} s`);
  if (f.fenced) reasons.push('self-fenced: waiting for the server');
  if (f.lowDisk) reasons.push(f.lowDisk);
  return reasons;
}

/** The extensions the agent uses: `undefined` not asked yet, `null` a reference server. */
export function capabilitiesSummary(caps: Capabilities | null | undefined): AgentStatus['capabilities'] {
  if (caps === undefined || caps === null) return caps;
  return {
    wakeup: caps.extensions.wait !== null,
    lostAfterSeconds: caps.extensions.lost_node?.lost_after_seconds ?? null,
    websocketAuth: caps.extensions.websocket.auth,
  };
}
