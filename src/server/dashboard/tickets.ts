/**
 * Download tickets: a browser follows a plain link to download an output (so the browser streams it
 * to disk, whatever its size), and a link cannot carry an `Authorization` header. The dashboard asks
 * for a ticket with its token; the ticket names one output and one user, and is valid for a minute.
 * It is an HMAC with a key derived from the server's token secret: replicas behind one address share
 * it (through the database), so a ticket one of them issued is good on the others.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const TICKET_SECONDS = 60;

export class DownloadTickets {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    this.#key = key;
  }

  issue(outputPk: number, userPk: number, nowMs = Date.now()): string {
    const exp = Math.floor(nowMs / 1000) + TICKET_SECONDS;
    return `${userPk}.${exp}.${this.#mac(outputPk, userPk, exp)}`;
  }

  /** The user pk the ticket was issued to, or undefined when it is malformed, forged or expired. */
  verify(ticket: string, outputPk: number, nowMs = Date.now()): number | undefined {
    const match = /^(\d{1,12})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(ticket);
    if (!match) return undefined;
    const userPk = Number(match[1]);
    const exp = Number(match[2]);
    if (exp * 1000 < nowMs) return undefined;
    const expected = Buffer.from(this.#mac(outputPk, userPk, exp));
    const given = Buffer.from(match[3]!);
    return given.length === expected.length && timingSafeEqual(given, expected) ? userPk : undefined;
  }

  #mac(outputPk: number, userPk: number, exp: number): string {
    return createHmac('sha256', this.#key).update(`${outputPk}.${userPk}.${exp}`).digest('base64url');
  }
}
