/**
 * A test's own HTTP server on a free loopback port (a peer that misbehaves on purpose, a stand-in
 * for the reference backend, a proxy). Closed when the test finishes, every open connection cut
 * first, so a server that holds requests open cannot keep the test waiting.
 */
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { onTestFinished } from 'vitest';

export interface Listening {
  url: string;
  port: number;
  /** Cut every open connection (upgraded ones too); the server keeps listening. */
  dropConnections(): void;
  /** Cut every connection and stop listening; safe to call twice. */
  close(): Promise<void>;
}

/** Listen on `port` (0: any free one) of 127.0.0.1. */
export async function listenOnLoopback(server: Server, port = 0): Promise<Listening> {
  // Tracked here rather than with closeAllConnections(): that one forgets upgraded sockets.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    if (socket.destroyed) return;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  const dropConnections = () => {
    for (const socket of sockets) socket.destroy();
  };
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    dropConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  onTestFinished(close);
  return { url: `http://127.0.0.1:${bound}`, port: bound, dropConnections, close };
}
