/**
 * SIGHUP: read the configuration again (file and environment as at start; flags still win) and apply
 * what can change while running — the log level, and for an agent the poll schedule and the slot
 * count for new jobs — then look at the hardware again. One log line says which changed settings were
 * applied and which need a restart. A configuration that no longer loads is reported and ignored: the
 * settings in force stay. Signals that arrive during a reload are folded into one more reload.
 */
import type { Logger } from 'pino';
import type { AgentOptions } from '../agent/options.js';
import { LIVE_AGENT_KEYS } from './agent-options.js';
import type { EffectiveConfig } from './config/load.js';
import { logLevelFrom } from './logger.js';

export interface ReloadTarget {
  log: Logger;
  /**
   * The configuration of the start: what needs a restart is reported against it (a setting changed and
   * changed back needs none). Live settings are reported against the last reload that applied them.
   */
  initial: EffectiveConfig;
  /** Load the configuration as the process did at start. */
  load(): EffectiveConfig;
  /** A --log-level flag, which wins over the configuration (so a reload does not change it). */
  levelFlag: string | undefined;
  /** Apply the service's live settings; returns the configuration keys it applied. */
  apply?(config: EffectiveConfig): Promise<string[]>;
  /** After the configuration: e.g. detect the hardware again. */
  after?(): Promise<void>;
}

/** Keys whose effective value differs (secrets compared, never logged: only their names are). */
export function changedKeys(before: EffectiveConfig, after: EffectiveConfig): string[] {
  return Object.keys(after.values).filter((k) => JSON.stringify(before.values[k]) !== JSON.stringify(after.values[k]));
}

/**
 * One reload, as SIGHUP runs it. `inForce` is the configuration whose live settings apply now (the
 * start's, or the last reload's); returns the one in force after this reload.
 */
export async function reload(t: ReloadTarget, inForce: EffectiveConfig = t.initial): Promise<EffectiveConfig> {
  t.log.info({ signal: 'SIGHUP' }, 'SIGHUP: reading the configuration again');
  let config: EffectiveConfig | undefined;
  let level: string | undefined;
  try {
    config = t.load();
    level = logLevelFrom(config, t.levelFlag);
  } catch (err) {
    t.log.error({ err: err instanceof Error ? err.message : String(err) }, 'configuration not reloaded (the settings in force stay)');
  }
  if (config && level) {
    // Live settings are compared with those in force: slots 2 → 1 → 2 applies a change each time,
    // although the last equals the start's.
    const changedNow = changedKeys(inForce, config);
    const live = new Set<string>();
    if (t.log.level !== level) t.log.level = level;
    if (t.levelFlag === undefined) live.add('agent.log_level');
    let appliedAll = true;
    try {
      for (const key of (await t.apply?.(config)) ?? []) live.add(key);
    } catch (err) {
      appliedAll = false;
      t.log.error({ err: err instanceof Error ? err.message : String(err) }, 'live settings not applied');
    }
    const applied = changedNow.filter((k) => live.has(k));
    // Anything else takes effect at the next start: it is named while it differs from the start's.
    const needRestart = changedKeys(t.initial, config).filter((k) => !live.has(k));
    t.log.info(
      { applied, needRestart },
      `configuration reloaded: ${applied.length > 0 ? `applied ${applied.join(', ')}` : 'no live setting changed'}; ` +
        `${needRestart.length > 0 ? `changed but only applied at the next start: ${needRestart.join(', ')}` : 'nothing needs a restart'}`,
    );
    if (appliedAll) inForce = config;
  }
  try {
    await t.after?.();
  } catch (err) {
    t.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'hardware check after SIGHUP failed');
  }
  return inForce;
}

/** Reload on every SIGHUP (never two at once); returns the function that removes the handler. */
export function onReloadSignal(target: ReloadTarget): () => void {
  let running: Promise<void> | undefined;
  let again = false;
  let inForce = target.initial;
  const handler = () => {
    if (running) {
      again = true;
      return;
    }
    const loop = async () => {
      do {
        again = false;
        inForce = await reload(target, inForce);
      } while (again);
      running = undefined;
    };
    running = loop();
  };
  process.on('SIGHUP', handler);
  return () => process.off('SIGHUP', handler);
}

/** SIGHUP for an agent (`run`, `standalone`): its live settings from `optionsFor(config)`, then its hardware. */
export function onAgentReloadSignal(
  agent: { reconfigure(options: AgentOptions): Promise<unknown>; refreshHardware(): Promise<boolean> },
  target: Omit<ReloadTarget, 'apply' | 'after'>,
  optionsFor: (config: EffectiveConfig) => AgentOptions,
): () => void {
  return onReloadSignal({
    ...target,
    apply: async (next) => {
      await agent.reconfigure(optionsFor(next));
      return Object.keys(LIVE_AGENT_KEYS);
    },
    after: async () => void (await agent.refreshHardware()),
  });
}
