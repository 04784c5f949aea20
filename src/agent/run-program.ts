/**
 * The programs the agent runs for itself, besides jobs (the docker CLI, nvidia-smi): run to their
 * end with a time limit, their output captured, and a failure that names the program, its arguments
 * and what it said. Jobs are not run here: they run under the wrapper (`child/spawn.ts`), detached
 * and with their output in files, so that they outlive the agent.
 */
import { execa, type ExecaError } from 'execa';

/** Options of {@link runProgram}. */
export interface RunProgramOptions {
  /** Killed (SIGKILL) after this long. */
  timeoutMs: number;
  /** Its environment on top of the agent's. */
  env?: Readonly<Record<string, string>>;
  signal?: AbortSignal;
}

/** What a program printed. */
export interface ProgramOutput {
  stdout: string;
  stderr: string;
}

/** Why a program failed: it could not be run, timed out, or exited non-zero. */
export class ProgramError extends Error {
  /** The program's name (`argv[0]`). */
  readonly program: string;
  /** `not-found`, `timeout`, `aborted`, `exit` (non-zero status or killed) or `spawn` (another spawn failure). */
  readonly kind: 'not-found' | 'timeout' | 'aborted' | 'exit' | 'spawn';
  /** The exit status, when it exited. */
  readonly exitCode: number | undefined;
  readonly stdout: string;
  readonly stderr: string;

  constructor(program: string, kind: ProgramError['kind'], message: string, detail: Partial<ProgramOutput> & { exitCode?: number | undefined; cause?: unknown }) {
    super(message, { cause: detail.cause });
    this.name = 'ProgramError';
    this.program = program;
    this.kind = kind;
    this.exitCode = detail.exitCode;
    this.stdout = detail.stdout ?? '';
    this.stderr = detail.stderr ?? '';
  }
}

/** Whether `err` is a {@link ProgramError}, of `kind` when given. */
export function isProgramError(err: unknown, kind?: ProgramError['kind']): err is ProgramError {
  return err instanceof ProgramError && (kind === undefined || err.kind === kind);
}

/**
 * Run `program args…` to its end, without a shell; resolves with its output when it exits 0.
 * @throws ProgramError naming the program and saying what went wrong (its last line of stderr).
 */
export async function runProgram(program: string, args: readonly string[], options: RunProgramOptions): Promise<ProgramOutput> {
  const shown = [program, ...args].join(' ');
  try {
    const result = await execa(program, args, {
      timeout: options.timeoutMs,
      killSignal: 'SIGKILL',
      ...(options.env ? { env: options.env } : {}),
      ...(options.signal ? { cancelSignal: options.signal } : {}),
      stdin: 'ignore',
      stripFinalNewline: false,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { stdout: result.stdout, stderr: result.stderr };
  } catch (err) {
    throw toProgramError(program, shown, options.timeoutMs, err as ExecaError);
  }
}

function toProgramError(program: string, shown: string, timeoutMs: number, err: ExecaError): ProgramError {
  const stdout = typeof err.stdout === 'string' ? err.stdout : '';
  const stderr = typeof err.stderr === 'string' ? err.stderr : '';
  const detail = { stdout, stderr, exitCode: err.exitCode, cause: err };
  if (err.code === 'ENOENT') return new ProgramError(program, 'not-found', `${program} not found (${shown})`, detail);
  if (err.timedOut) return new ProgramError(program, 'timeout', `'${shown}' did not end within ${timeoutMs} ms`, detail);
  if (err.isCanceled) return new ProgramError(program, 'aborted', `'${shown}' was aborted`, detail);
  if (err.exitCode !== undefined || err.signal !== undefined) {
    const said = lastLine(stderr) || lastLine(stdout);
    const how = err.exitCode !== undefined ? `exited with status ${err.exitCode}` : `was killed by ${err.signal}`;
    return new ProgramError(program, 'exit', `'${shown}' ${how}${said ? `: ${said}` : ''}`, detail);
  }
  return new ProgramError(program, 'spawn', `could not run '${shown}': ${err.shortMessage ?? err.message}`, detail);
}

/** The last non-empty line of a program's output. */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  return lines.at(-1) ?? '';
}
