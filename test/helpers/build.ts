/**
 * Tests that start the product as a separate process (the server or agent killed with SIGKILL, the
 * CLI) need `dist/`. `npm test` builds before vitest starts; `buildOnce()` makes a single test file
 * run on its own work too, building only when a source file is newer than the build, and never twice
 * at once (a lock directory serialises builds across vitest's worker processes).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const REPO = resolve(import.meta.dirname, '../..');
const MAIN = join(REPO, 'dist/cli/main.js');
const LOCK = join(REPO, 'node_modules/.cache/ufdl-build.lock');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

const UI_INDEX = join(REPO, 'dist/ui/index.html');

function isFresh(): boolean {
  try {
    // The dashboard bundles src/ui and the protocol modules it imports.
    return (
      statSync(MAIN).mtimeMs >= newestSource(join(REPO, 'src')) &&
      statSync(UI_INDEX).mtimeMs >= Math.max(newestSource(join(REPO, 'src/ui')), newestSource(join(REPO, 'src/protocol')))
    );
  } catch {
    return false;
  }
}

export async function buildOnce(): Promise<void> {
  if (isFresh()) return;
  mkdirSync(join(REPO, 'node_modules/.cache'), { recursive: true });
  const deadline = Date.now() + 240_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // A lock left by a test run that was killed mid-build is taken over after a while.
      const age = Date.now() - (statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 200_000) rmSync(LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`build lock ${LOCK} held too long; remove it if no build runs`);
      await new Promise((r) => setTimeout(r, 250));
      if (isFresh()) return;
    }
  }
  try {
    if (isFresh()) return;
    // Type errors do not stop tsc from emitting; the type-check is its own CI step.
    await promisify(execFile)(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(REPO, 'tsconfig.json')], {
      cwd: REPO,
    }).catch((err: { stdout?: string }) => {
      if (statSync(MAIN, { throwIfNoEntry: false }) === undefined) throw new Error(`build failed:\n${err.stdout ?? err}`);
    });
    // The CLI as shipped: its bundle replaces tsc's dist/cli/ (scripts/build-cli.mjs).
    await promisify(execFile)(process.execPath, [join(REPO, 'scripts/build-cli.mjs')], { cwd: REPO }).catch((err: { stderr?: string }) => {
      throw new Error(`CLI bundle failed:\n${err.stderr ?? err}`);
    });
    await promisify(execFile)(process.execPath, [join(REPO, 'node_modules/vite/bin/vite.js'), 'build', '-c', join(REPO, 'src/ui/vite.config.ts')], {
      cwd: REPO,
    }).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`dashboard build failed:\n${err.stdout ?? ''}${err.stderr ?? err}`);
    });
  } finally {
    rmdirSync(LOCK);
  }
}
