/**
 * The one error type a command throws on purpose: a one-line message and a named exit status
 * (exit-codes.ts). `main.ts` prints `ufdl-agent: <message>` and exits with `exitCode`, without a
 * stack trace.
 */
import { EXIT, type ExitCode } from './exit-codes.js';

export class CliError extends Error {
  readonly exitCode: ExitCode;

  constructor(exitCode: ExitCode, message: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** Bad command-line usage (64). */
export function usageError(message: string): CliError {
  return new CliError(EXIT.USAGE, message);
}

/** A positive integer primary key from a command-line argument, else a usage error naming it. */
export function parsePk(raw: string, what: string): number {
  const text = raw.trim();
  if (!/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw usageError(`${what} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return Number(text);
}

/** A non-negative integer option value (e.g. `--limit`), else a usage error naming the option. */
export function parseCount(raw: string, option: string): number {
  const text = raw.trim();
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw usageError(`${option} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return Number(text);
}
