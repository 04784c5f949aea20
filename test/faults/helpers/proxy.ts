/**
 * A TCP proxy on 127.0.0.1 that the test controls, to put a network fault between an agent and the
 * server. Modes (switch at any time with {@link TcpProxy.setMode}):
 *
 * - `pass`  — forward both ways.
 * - `drop`  — a black hole: bytes arriving in either direction are discarded and the connection is
 *             dead for good (never forwarded again, held open until a peer closes it, as a silent
 *             network would); new connections are accepted and held the same way. Clients learn
 *             only through their own timeouts.
 * - `stall` — nothing moves, nothing is lost: sockets stop being read (TCP back-pressure), new
 *             connections are accepted but not connected upstream; when the mode changes back,
 *             everything held is delivered late (a partition that heals before TCP gives up).
 * - `reset` — every connection is destroyed with a TCP RST at once, and so is every new one.
 * - `slow`  — every chunk is delivered `delayMs` late (in order).
 *
 * Switching from `drop`/`reset` back to `pass` leaves dead connections dead; new ones work.
 *
 * Beside the mode, {@link TcpProxy.resetWhenSent} cuts one kind of request only: the connection
 * that sends given bytes is reset before they go on (e.g. the one statement of a PostgreSQL client
 * that a test wants to fail, while its other connections and statements pass).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export type ProxyMode = 'pass' | 'drop' | 'stall' | 'reset' | 'slow';

interface Pair {
  id: number;
  client: Socket;
  upstream: Socket | null;
  /** Black-holed: never forwards again. */
  dead: boolean;
  /** Waiting for the upstream connection (stalled at accept). */
  pendingConnect: boolean;
  /** The upstream closed while stalled: the client learns it when the path heals. */
  upstreamClosed: boolean;
  /** Bytes (or an end) held while stalled, per direction. */
  heldUp: (Buffer | null)[];
  heldDown: (Buffer | null)[];
  /** For `slow`: when the last chunk of each direction is due, to keep order. */
  dueUp: number;
  dueDown: number;
  /** For `slow`: chunks scheduled towards the client and not yet written. */
  pendingDown: number;
  /** The last bytes sent upstream, for a pattern split across two chunks. */
  sentTail: Buffer;
}

export interface ProxyStats {
  connections: number;
  open: number;
  bytesUp: number;
  bytesDown: number;
  droppedBytes: number;
  resets: number;
  /** Connections reset by {@link TcpProxy.resetWhenSent}. */
  resetsWhenSent: number;
}

export class TcpProxy {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<Pair>();
  #mode: ProxyMode = 'pass';
  #delayMs = 200;
  #nextId = 1;
  #resetPattern: Buffer | undefined;
  readonly stats: ProxyStats = { connections: 0, open: 0, bytesUp: 0, bytesDown: 0, droppedBytes: 0, resets: 0, resetsWhenSent: 0 };
  port = 0;

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = createServer({ pauseOnConnect: true }, (socket) => this.#accept(socket));
  }

  /** Listen on a free port of 127.0.0.1, forwarding to `target`. */
  static async start(target: { host?: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy({ host: target.host ?? '127.0.0.1', port: target.port });
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = proxy.#server.address();
    proxy.port = typeof address === 'object' && address !== null ? address.port : 0;
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  /** Change the mode; `delayMs` applies to `slow`. */
  setMode(mode: ProxyMode, delayMs?: number): void {
    if (delayMs !== undefined) this.#delayMs = delayMs;
    const previous = this.#mode;
    this.#mode = mode;
    if (mode === 'reset') {
      for (const pair of [...this.#pairs]) this.#reset(pair);
      return;
    }
    if (mode === 'stall') {
      for (const pair of this.#pairs) {
        pair.client.pause();
        pair.upstream?.pause();
      }
      return;
    }
    if ((mode === 'pass' || mode === 'slow') && previous !== mode) {
      for (const pair of [...this.#pairs]) this.#flow(pair);
    }
  }

  /**
   * From now on, reset any connection whose client sends `pattern` (in one chunk or across two),
   * before those bytes reach the server; `undefined` stops it.
   */
  resetWhenSent(pattern: string | undefined): void {
    this.#resetPattern = pattern === undefined ? undefined : Buffer.from(pattern);
  }

  /** Stop listening and destroy every connection. */
  async close(): Promise<void> {
    for (const pair of [...this.#pairs]) this.#destroy(pair);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.stats.connections++;
    if (this.#mode === 'reset') {
      this.stats.resets++;
      client.resetAndDestroy();
      return;
    }
    const pair: Pair = {
      id: this.#nextId++,
      client,
      upstream: null,
      dead: this.#mode === 'drop',
      pendingConnect: true,
      upstreamClosed: false,
      heldUp: [],
      heldDown: [],
      dueUp: 0,
      dueDown: 0,
      pendingDown: 0,
      sentTail: Buffer.alloc(0),
    };
    this.#pairs.add(pair);
    this.stats.open = this.#pairs.size;
    client.on('error', () => this.#destroy(pair));
    client.on('close', () => this.#destroy(pair));
    client.on('data', (chunk: Buffer) => this.#onData(pair, 'up', chunk));
    client.on('end', () => this.#onData(pair, 'up', null));
    if (pair.dead) {
      // A black-holed connection: read and discard, never connect upstream.
      client.resume();
      return;
    }
    if (this.#mode === 'stall') return; // connected upstream when the path heals
    this.#connectUpstream(pair);
  }

  #connectUpstream(pair: Pair): void {
    pair.pendingConnect = false;
    const upstream = connect({ host: this.#target.host, port: this.#target.port });
    pair.upstream = upstream;
    upstream.on('error', () => this.#destroy(pair));
    upstream.on('close', () => {
      // A dead pair's client never learns that the far side went away; a stalled one later; a
      // slow one after the delayed bytes. Otherwise the client's side is ended gracefully, after
      // what was written (destroying it could drop bytes still buffered for the client).
      if (pair.dead) return;
      pair.upstreamClosed = true;
      if (this.#mode === 'stall' || pair.pendingDown > 0) return;
      pair.client.end();
    });
    upstream.on('data', (chunk: Buffer) => this.#onData(pair, 'down', chunk));
    upstream.on('end', () => this.#onData(pair, 'down', null));
    upstream.on('connect', () => {
      if (this.#mode === 'stall') upstream.pause();
      else pair.client.resume();
    });
  }

  /** Bytes (or an end, `null`) arriving from one side. */
  #onData(pair: Pair, direction: 'up' | 'down', chunk: Buffer | null): void {
    if (chunk !== null) {
      if (direction === 'up') this.stats.bytesUp += chunk.length;
      else this.stats.bytesDown += chunk.length;
    }
    const pattern = this.#resetPattern;
    if (direction === 'up' && chunk !== null && pattern !== undefined && !pair.dead) {
      const seen = Buffer.concat([pair.sentTail, chunk]);
      if (seen.includes(pattern)) {
        this.stats.resetsWhenSent++;
        this.#reset(pair);
        return;
      }
      pair.sentTail = seen.subarray(Math.max(0, seen.length - pattern.length + 1));
    }
    this.#forward(pair, direction, chunk);
  }

  /** Forward (or hold, delay, drop) one chunk according to the current mode. */
  #forward(pair: Pair, direction: 'up' | 'down', chunk: Buffer | null): void {
    if (pair.dead) {
      if (chunk !== null) this.stats.droppedBytes += chunk.length;
      return;
    }
    switch (this.#mode) {
      case 'drop':
        if (chunk !== null) this.stats.droppedBytes += chunk.length;
        pair.dead = true;
        // Keep reading (and discarding) from both sides; never forward again.
        pair.client.resume();
        pair.upstream?.resume();
        return;
      case 'stall':
        // Paused sockets may still deliver what was already read.
        (direction === 'up' ? pair.heldUp : pair.heldDown).push(chunk);
        return;
      case 'slow': {
        const now = Date.now();
        const due = Math.max(now + this.#delayMs, direction === 'up' ? pair.dueUp : pair.dueDown);
        if (direction === 'up') pair.dueUp = due;
        else {
          pair.dueDown = due;
          pair.pendingDown++;
        }
        setTimeout(() => {
          if (direction === 'down') pair.pendingDown--;
          this.#deliver(pair, direction, chunk);
          if (direction === 'down' && pair.pendingDown === 0 && pair.upstreamClosed && !pair.dead) pair.client.end();
        }, due - now);
        return;
      }
      case 'pass':
        this.#deliver(pair, direction, chunk);
        return;
      case 'reset':
        this.#reset(pair);
        return;
    }
  }

  #deliver(pair: Pair, direction: 'up' | 'down', chunk: Buffer | null): void {
    if (pair.dead || !this.#pairs.has(pair)) return;
    const to = direction === 'up' ? pair.upstream : pair.client;
    const from = direction === 'up' ? pair.client : pair.upstream;
    if (to === null) {
      // Upstream not connected yet (accepted while stalled): hold it.
      pair.heldUp.push(chunk);
      return;
    }
    if (chunk === null) {
      to.end();
      return;
    }
    if (!to.write(chunk) && from !== null) {
      from.pause();
      to.once('drain', () => {
        if (this.#mode !== 'stall' && !pair.dead) from.resume();
      });
    }
  }

  /** After a stall: connect what waited, deliver what was held, read again. */
  #flow(pair: Pair): void {
    if (pair.dead) return;
    if (pair.pendingConnect) this.#connectUpstream(pair);
    const up = pair.heldUp.splice(0);
    const down = pair.heldDown.splice(0);
    for (const chunk of up) this.#forward(pair, 'up', chunk);
    for (const chunk of down) this.#forward(pair, 'down', chunk);
    if (pair.upstreamClosed) {
      // The far side went away during the stall: close the client's side after what was held.
      pair.client.end();
      return;
    }
    if (pair.upstream !== null) {
      pair.client.resume();
      pair.upstream.resume();
    }
  }

  #reset(pair: Pair): void {
    this.stats.resets++;
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (pair.upstream && !pair.upstream.destroyed) pair.upstream.resetAndDestroy();
    this.#destroy(pair);
  }

  #destroy(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    this.stats.open = this.#pairs.size;
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}
