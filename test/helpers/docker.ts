/**
 * Tests on a real Docker engine. Without one they fail loudly, saying how to get one; a developer
 * without Docker sets `UFDL_SKIP_DOCKER_TESTS=1`, and the skip shows in the test names (never a silent
 * skip). CI starts an engine before the tests (`.ci/run`).
 */
import { execFile, spawnSync } from 'node:child_process';

/** The opt-out for machines without Docker; documented in README.md ("Tests"). */
export const SKIP_DOCKER_ENV = 'UFDL_SKIP_DOCKER_TESTS';

export const skipDocker = ['1', 'true', 'yes'].includes((process.env[SKIP_DOCKER_ENV] ?? '').toLowerCase());

/** Appended to the names of tests that need the engine, so that a skip is visible in the output. */
export const dockerSkipNote = skipDocker ? ` (skipped: ${SKIP_DOCKER_ENV}=${process.env[SKIP_DOCKER_ENV]})` : '';

/** Throws a clear error when no engine answers (call it in `beforeAll` of tests that need one). */
export function requireDockerEngine(): string {
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status === 0 && r.stdout.trim() !== '') return r.stdout.trim();
  const why = r.error ? r.error.message : (r.stderr || r.stdout).trim().split('\n').at(-1);
  throw new Error(
    `No Docker engine is reachable (docker info: ${why}). These tests run the image on a real engine: ` +
      `start Docker (CI's .ci/run installs and starts one), or set ${SKIP_DOCKER_ENV}=1 to skip them.`,
  );
}

export interface DockerResult {
  stdout: string;
  stderr: string;
}

/** Run the docker CLI; rejects with its stderr when it exits non-zero. */
export function docker(args: string[], options: { timeoutMs?: number } = {}): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    execFile('docker', args, { timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`docker ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** `docker inspect -f <format>` of a container, trimmed. */
export async function inspect(container: string, format: string): Promise<string> {
  return (await docker(['inspect', '-f', format, container])).stdout.trim();
}

/** Remove containers and volumes, ignoring the ones that are already gone. */
export async function removeAll(containers: string[], volumes: string[] = []): Promise<void> {
  if (containers.length > 0) await docker(['rm', '-f', '-v', ...containers]).catch(() => {});
  if (volumes.length > 0) await docker(['volume', 'rm', '-f', ...volumes]).catch(() => {});
}
