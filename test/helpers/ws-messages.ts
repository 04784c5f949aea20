/**
 * The JSON messages a web socket receives, in order, and a wait for the first `count` of them (it
 * fails after a generous deadline, naming what did arrive). Listen before the socket opens: a
 * server's first message may come in the same packet as the handshake's answer.
 */
import type WebSocket from 'ws';

export interface ReceivedMessages<T> {
  messages: T[];
  received(count: number): Promise<T[]>;
}

export function receiveJson<T>(socket: WebSocket, deadlineMs = 10_000): ReceivedMessages<T> {
  const messages: T[] = [];
  const waiters: Array<() => void> = [];
  socket.on('message', (data) => {
    messages.push(JSON.parse(data.toString()) as T);
    for (const wake of waiters.splice(0)) wake();
  });
  const received = (count: number) =>
    new Promise<T[]>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`only ${messages.length} of ${count} messages: ${JSON.stringify(messages)}`)), deadlineMs);
      const check = () => {
        if (messages.length >= count) {
          clearTimeout(deadline);
          resolve(messages.slice());
        } else {
          waiters.push(check);
        }
      };
      check();
    });
  return { messages, received };
}
