/**
 * What the agent says about itself (docs/ARCHITECTURE.md, "Conventions" 3): the plain {@link AgentStatus} snapshot for
 * `/status.json` and `ufdl-agent status`, and whether it is alive (for `/livez`). Whether it is
 * ready (`/readyz`) is `health/readiness.ts`.
 */
import type { EndpointsStatus } from '../client/endpoints.js';
import type { Capabilities } from '../protocol/wire.js';
import type { ServerContact } from './server-contact.js';
import type { JobStatus } from './job/runner.js';
import type { AgentState } from './lifecycle.js';
import type { PollLoop } from './poll/loop.js';
import type { RunningParts } from './wiring.js';
import type { Health } from './health/status-server.js';

export interface AgentStatus {
  state: AgentState;
  ready: boolean;
  notReady: string[];
  pid: number;
  startedAt: string;
  /** The server address in use. */
  serverUrl: string;
  /** Every server address, the one in use, failures and switches; null before the client exists. */
  servers: EndpointsStatus | null;
  capabilities: { wakeup: boolean; lostAfterSeconds: number | null; websocketAuth: boolean } | null | undefined;
  lastServerContactAt: string | null;
  serverSilentMs: number;
  /**
   * `retiring`: out of the plan, it takes no new job and leaves when its job ends. `nodeBusy`: its node
   * works the job of another slot (beyond the plan); it takes no job until that job has left.
   */
  slots: { index: number; gpu: number | null; nodeIndex: number; nodePk: number | null; jobPk: number | null; retiring?: true; nodeBusy?: true }[];
  jobs: JobStatus[];
  loop: ReturnType<PollLoop['getStatus']> | null;
  fence: { thresholdMs: number; fencedCount: number } | null;
  journal: { path: string; unfinished: number } | null;
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

export interface StatusFacts {
  state: AgentState;
  /** Why the agent is not ready; empty when it is. */
  notReady: string[];
  startedAt: Date;
  serverUrl: string;
  contact: ServerContact;
  /** What is open so far (all of it once the agent runs). */
  parts: Partial<RunningParts>;
}

/** The snapshot of an agent with these facts and parts. */
export function statusSnapshot(f: StatusFacts): AgentStatus {
  const { parts, contact } = f;
  const journal = parts.journal && !parts.journal.closed ? parts.journal : undefined;
  return {
    state: f.state,
    ready: f.notReady.length === 0,
    notReady: f.notReady,
    pid: process.pid,
    startedAt: f.startedAt.toISOString(),
    serverUrl: parts.base ? parts.base.serverUrl.replace(/\/$/, '') : f.serverUrl,
    servers: parts.base ? parts.base.getStatus().endpoints : null,
    capabilities: capabilitiesSummary(parts.caps),
    lastServerContactAt: contact.lastOkWallClock().toISOString(),
    serverSilentMs: contact.silentForMs(),
    // A slot beyond the plan registers no node: its job reports as the node it was acquired as.
    slots: (parts.slots?.snapshot() ?? []).map((s) => ({
      ...s,
      nodePk: parts.nodes?.get(s.index)?.node.pk ?? (s.jobPk === null ? undefined : parts.jobs?.get(s.jobPk)?.api.nodePk) ?? null,
    })),
    jobs: (parts.jobs?.all() ?? []).map((r) => r.status),
    loop: parts.loop?.getStatus() ?? null,
    fence: parts.watch?.fence ?? null,
    journal: journal ? { path: journal.path, unfinished: journal.unfinished().length } : null,
  };
}

/** Alive unless failed, or the journal is closed or does not answer while the agent has not stopped. */
export function livenessOf(state: AgentState, journal: RunningParts['journal'] | undefined): Health {
  const reasons: string[] = [];
  if (state === 'failed') reasons.push('failed');
  if (journal?.closed && state !== 'stopped') reasons.push('journal closed');
  else if (journal && !journal.closed) {
    try {
      journal.unfinished();
    } catch (err) {
      reasons.push(`journal does not answer: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { ok: reasons.length === 0, reasons };
}
