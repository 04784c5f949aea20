/**
 * `startAgent(options, logger)`: the daemon as `ufdl-agent run` starts it — the real journal, client,
 * hardware detection and executors wired into an {@link Agent}, signal handling installed (`signals.ts`),
 * started, and returned once it is `running`. Await `agent.whenStopped()` for the end; the process
 * should then exit 0 (a clean stop).
 */
import type { Logger } from 'pino';
import { Agent, type AgentDeps } from './agent.js';
import { unknownFailPoints, FAIL_POINTS_ENV } from './fail-points.js';
import { resolveAgentOptions, type AgentOptions } from './options.js';
import { installSignalHandlers } from './signals.js';
import { realDeps } from './wiring.js';
import { makeDirsSync } from '../make-dirs.js';

export { Agent } from './agent.js';
export type { AgentEvents, AgentDeps } from './agent.js';
export type { AgentStatus } from './status.js';
export type { AgentState } from './lifecycle.js';
export { resolveAgentOptions, AGENT_DEFAULTS } from './options.js';
export type { AgentOptions, ResolvedAgentOptions } from './options.js';
export { LIVE_OPTIONS, type OptionsChange } from './options.js';

export interface StartAgentExtras {
  /** Install SIGTERM/SIGINT/SIGQUIT handlers (drain, stop now, exit now). @default true */
  handleSignals?: boolean;
  /** Replace parts of the wiring (tests). */
  deps?: Partial<AgentDeps>;
}

/** Start the daemon; resolves once it runs (or rejects when it cannot start, e.g. the journal is in use). */
export async function startAgent(input: AgentOptions, log: Logger, extras: StartAgentExtras = {}): Promise<Agent> {
  const agent = createAgent(input, log, extras);
  await agent.start();
  return agent;
}

/**
 * The agent, wired and with its signal handlers, but not started: `await agent.start()`. Lets a
 * caller hold the agent while it starts (a start-up that waits for credentials can be closed).
 */
export function createAgent(input: AgentOptions, log: Logger, extras: StartAgentExtras = {}): Agent {
  const options = resolveAgentOptions(input);
  makeDirsSync(options.workDir);
  const unknown = unknownFailPoints();
  if (unknown.length > 0) log.warn({ unknown, variable: FAIL_POINTS_ENV }, 'unknown fail points (they never fire)');
  if (options.fenceMarginMs < options.killGraceMs + 1000) {
    // Self-fencing stops children `fence_margin` before the server may hand their jobs to another
    // node; a child that ignores SIGTERM needs `kill_grace` of that margin to die.
    log.warn(
      { fenceMarginMs: options.fenceMarginMs, killGraceMs: options.killGraceMs },
      'agent.fence_margin should exceed agent.kill_grace by at least 1 s, or a fenced job may still run when another node takes it',
    );
  }
  const agent = new Agent(options, log, { ...realDeps(options, log), ...extras.deps });
  if (extras.handleSignals ?? true) {
    const remove = installSignalHandlers(
      {
        drain: (reason) => agent.drain(reason),
        stopNow: (reason) => agent.stopNow(reason),
        exitNow: () => {
          agent.abandon();
          process.exit(1);
        },
      },
      log,
    );
    void agent.whenStopped().then(remove);
  }
  return agent;
}
