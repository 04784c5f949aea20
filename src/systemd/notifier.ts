/**
 * What a `Type=notify` service tells systemd (sd_notify(3)), and when:
 *
 * - while starting, `EXTEND_TIMEOUT_USEC` every {@link START_EXTEND_EVERY_MS}, with a `STATUS=` line
 *   saying what it waits for, so that a start that waits for an unreachable server (or uploads a
 *   crashed job's outputs) is not killed by `TimeoutStartSec=` while its event loop is alive;
 * - `READY=1` once it does its work (the agent: registered and polling; the server: listening);
 * - `STATUS=` lines when what it does changes (at most one a second; `systemctl status` shows the last);
 * - `WATCHDOG=1` from the event loop at half of `WatchdogSec=` (`$WATCHDOG_USEC`), only while the
 *   process says it is healthy: a wedged loop or an unhealthy process stops the pings, systemd kills
 *   it (SIGABRT) and `Restart=on-failure` starts it again, and recovery does the rest;
 * - `STOPPING=1` when it begins to stop (the agent: when it starts to drain).
 *
 * Without `$NOTIFY_SOCKET` every call does nothing. A send that fails is logged once per error code,
 * never thrown: notifications must not take the service down.
 */
import { notifyTarget, oneLine, sendDatagram } from './notify-socket.js';

export interface NotifierLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface NotifierOptions {
  log: NotifierLog;
  /**
   * Where `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` are read. When it is `process.env` they
   * are removed from it once read, so that jobs and other children do not inherit them (what
   * sd_notify's `unset_environment` does). @default process.env
   */
  env?: NodeJS.ProcessEnv;
  /** Whether to pet the watchdog now; the reasons are logged when it is not. @default always healthy */
  healthy?: () => { ok: boolean; reasons: string[] };
  /** @default the native datagram send */
  send?: (address: string, message: string) => void;
  /** At most one STATUS= update per this many ms. @default 1000 */
  statusIntervalMs?: number;
}

const NOTIFY_VARIABLES = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

/** How often a starting service asks for more time, and how much. */
export const START_EXTEND_EVERY_MS = 10_000;
const START_EXTEND_USEC = 30_000_000;

export class ServiceNotifier {
  /** The socket address, or undefined when notifications are off. */
  readonly address: string | undefined;
  /** Half of `$WATCHDOG_USEC` in ms (the ping interval), or null without a watchdog for this process. */
  readonly watchdogPingMs: number | null;
  readonly #o: Required<Omit<NotifierOptions, 'env'>>;
  readonly #failures = new Set<string>();
  #ready = false;
  #stopping = false;
  #closed = false;
  #lastStatus: string | undefined;
  #lastStatusAt = 0;
  #pendingStatus: string | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #watchdogTimer: NodeJS.Timeout | undefined;
  #extendTimer: NodeJS.Timeout | undefined;
  #unhealthy: string | undefined;

  constructor(options: NotifierOptions) {
    const env = options.env ?? process.env;
    this.#o = {
      log: options.log,
      healthy: options.healthy ?? (() => ({ ok: true, reasons: [] })),
      send: options.send ?? sendDatagram,
      statusIntervalMs: options.statusIntervalMs ?? 1000,
    };
    const target = notifyTarget(env.NOTIFY_SOCKET);
    if (target && 'problem' in target) options.log.error({ notifySocket: env.NOTIFY_SOCKET }, `systemd notifications are off: ${target.problem}`);
    this.address = target && 'address' in target ? target.address : undefined;
    this.watchdogPingMs = this.address ? watchdogPingMs(env) : null;
    if (env === process.env) for (const name of NOTIFY_VARIABLES) delete process.env[name];
  }

  get enabled(): boolean {
    return this.address !== undefined;
  }

  /**
   * Start the watchdog pings and, until {@link ready}, the start-timeout extensions. Call it as the
   * service begins to start, with what it does first. Called again while starting (standalone: its
   * server, then its agent, each says it starts), it is a new STATUS= line, the timers as they are.
   */
  starting(status: string): void {
    if (!this.address || this.#closed) return;
    if (this.#extendTimer !== undefined) return this.status(status);
    this.#send(`EXTEND_TIMEOUT_USEC=${START_EXTEND_USEC}\nSTATUS=${oneLine(status)}`);
    this.#lastStatus = status;
    this.#lastStatusAt = Date.now();
    this.#extendTimer = setInterval(() => this.#send(`EXTEND_TIMEOUT_USEC=${START_EXTEND_USEC}`), START_EXTEND_EVERY_MS);
    this.#extendTimer.unref();
    this.#startWatchdog();
  }

  /** READY=1 with the first status line. Idempotent. */
  ready(status: string): void {
    if (!this.address || this.#ready || this.#closed) return;
    this.#ready = true;
    clearInterval(this.#extendTimer);
    this.#startWatchdog();
    this.#clearPendingStatus();
    this.#lastStatus = status;
    this.#lastStatusAt = Date.now();
    this.#send(`READY=1\nSTATUS=${oneLine(status)}`);
  }

  /** A new STATUS= line; identical lines are not sent again, and updates are at most one a second. */
  status(text: string): void {
    if (!this.address || this.#closed) return;
    if (text === (this.#pendingStatus ?? this.#lastStatus)) return;
    const wait = this.#lastStatusAt + this.#o.statusIntervalMs - Date.now();
    if (wait <= 0 && !this.#statusTimer) return this.#sendStatus(text);
    this.#pendingStatus = text;
    this.#statusTimer ??= setTimeout(() => {
      this.#statusTimer = undefined;
      const pending = this.#pendingStatus;
      this.#pendingStatus = undefined;
      if (pending !== undefined && !this.#closed) this.#sendStatus(pending);
    }, Math.max(0, wait));
    this.#statusTimer.unref();
  }

  /** STOPPING=1 with why. Idempotent; the watchdog keeps running until {@link close}. */
  stopping(status: string): void {
    if (!this.address || this.#stopping || this.#closed) return;
    this.#stopping = true;
    clearInterval(this.#extendTimer);
    this.#clearPendingStatus();
    this.#lastStatus = status;
    this.#lastStatusAt = Date.now();
    this.#send(`STOPPING=1\nSTATUS=${oneLine(status)}`);
  }

  /** Stop every timer. The process is about to exit. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#extendTimer);
    clearInterval(this.#watchdogTimer);
    this.#clearPendingStatus();
  }

  #startWatchdog(): void {
    if (this.watchdogPingMs === null || this.#watchdogTimer || this.#closed) return;
    // A timer of the event loop: when the loop is wedged, no ping leaves and systemd steps in.
    this.#watchdogTimer = setInterval(() => this.#pet(), this.watchdogPingMs);
    this.#watchdogTimer.unref();
    this.#pet();
  }

  #pet(): void {
    const health = this.#o.healthy();
    if (!health.ok) {
      const why = health.reasons.join('; ') || 'unhealthy';
      if (why !== this.#unhealthy) this.#o.log.error({ reasons: health.reasons }, 'not petting the systemd watchdog: the process is unhealthy; systemd restarts it if this lasts');
      this.#unhealthy = why;
      return;
    }
    if (this.#unhealthy !== undefined) this.#o.log.info({}, 'healthy again: petting the systemd watchdog');
    this.#unhealthy = undefined;
    this.#send('WATCHDOG=1');
  }

  #sendStatus(text: string): void {
    this.#lastStatus = text;
    this.#lastStatusAt = Date.now();
    this.#send(`STATUS=${oneLine(text)}`);
  }

  #clearPendingStatus(): void {
    clearTimeout(this.#statusTimer);
    this.#statusTimer = undefined;
    this.#pendingStatus = undefined;
  }

  #send(message: string): void {
    try {
      this.#o.send(this.address!, message);
      this.#failures.clear();
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err instanceof Error ? err.message : String(err));
      if (this.#failures.has(code)) return;
      this.#failures.add(code);
      this.#o.log.warn({ err: err instanceof Error ? err.message : String(err), notifySocket: this.address }, 'a systemd notification could not be sent');
    }
  }
}

/**
 * Half of `$WATCHDOG_USEC` in ms (sd_watchdog_enabled(3)), or null: unset, not a positive number, or
 * `$WATCHDOG_PID` names another process (the variable was inherited, the watchdog is not ours).
 */
export function watchdogPingMs(env: NodeJS.ProcessEnv, pid = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}
