/**
 * The one error type a command throws on purpose: a one-line message and a named exit status
 * (exit-codes.ts). `main.ts` prints `ufdl-agent: <message>` and exits with `exitCode`, without a
 * stack trace.
 */
import type { Command } from 'commander';
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

/**
 * Make commander's own usage errors (missing argument, unknown option) one line on stderr, naming
 * the command: `ufdl-agent: jobs: unknown option '--bogus' (see 'ufdl-agent jobs --help')`. The
 * exit status stays 64 (main.ts).
 */
export function oneLineUsageErrors(command: Command): Command {
  return command.showHelpAfterError(false).configureOutput({
    outputError: (text, write) => {
      const path = commandPath(command);
      const message = text.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim();
      write(path === '' ? `ufdl-agent: ${message} (see 'ufdl-agent --help')\n` : `ufdl-agent: ${path}: ${message} (see 'ufdl-agent ${path} --help')\n`);
    },
  });
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}
