/**
 * The stop and reload signals of a command that starts in steps (`standalone`: its server's start, its
 * server, then its agent), handled from the command's first moment on. Handlers that each step
 * installs and removes leave gaps between the steps, and in a gap Node.js gives the signal its default
 * action: the process ends outright, a server's store unclosed (SIGHUP, `systemctl reload`, too). So
 * one listener per signal is installed at the start, for good, and sends each signal to what the
 * current step says to do with it ({@link RoutedSignals.route}).
 */

export interface SignalRoute {
  /** SIGTERM, SIGINT (Ctrl-C) or SIGQUIT. */
  stop(signal: NodeJS.Signals): void;
  /** SIGHUP. */
  reload(): void;
}

export const ROUTED_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP'];

export class RoutedSignals {
  #route: SignalRoute | undefined;
  /** Signals that came before the first route (while the command still loads what it needs). */
  readonly #early: NodeJS.Signals[] = [];
  readonly #listener = (signal: NodeJS.Signals) => this.#deliver(signal);

  constructor() {
    for (const signal of ROUTED_SIGNALS) process.on(signal, this.#listener);
  }

  /** Send the signals to `route` from now on; those that came before the first route go to it now, in order. */
  route(route: SignalRoute): void {
    this.#route = route;
    for (const signal of this.#early.splice(0)) this.#deliver(signal);
  }

  /** Remove the listeners (the signals' default actions apply again). */
  close(): void {
    for (const signal of ROUTED_SIGNALS) process.off(signal, this.#listener);
  }

  #deliver(signal: NodeJS.Signals): void {
    const route = this.#route;
    if (route === undefined) this.#early.push(signal);
    else if (signal === 'SIGHUP') route.reload();
    else route.stop(signal);
  }
}
