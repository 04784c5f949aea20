/**
 * The files the package ships beside its code — package.json, config/templates/, the dashboard in
 * dist/ui/, the native addon node-gyp builds in build/Release/, the CLI's entry point — found from
 * the package's root rather than from the module's own place: the same module runs from `src/` (the
 * tests), from tsc's `dist/` and from the CLI's bundles (`dist/cli/main.js`, the short commands'
 * `dist/cli/short-commands.cjs`, the chunks in `dist/cli/chunks/`), each at a different depth below
 * the root.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The package's root: the nearest directory at or above this module that holds a package.json. */
export function packageRoot(): string {
  if (root === undefined) {
    const here = dirname(fileURLToPath(import.meta.url));
    let dir = here;
    while (!existsSync(join(dir, 'package.json'))) {
      const up = dirname(dir);
      if (up === dir) throw new Error(`no package.json at or above ${here}: the installation is incomplete`);
      dir = up;
    }
    root = dir;
  }
  return root;
}

/** A path inside the package, e.g. `packagePath('config', 'templates')`. */
export function packagePath(...segments: string[]): string {
  return join(packageRoot(), ...segments);
}

/** The bin entry (`ufdl-agent`), as a command line would name it. */
export const CLI_ENTRY = 'dist/cli/main.js';

let version: string | undefined;

/** The package's version from its package.json, read once ('0.0.0' if it has none). */
export function packageVersion(): string {
  if (version === undefined) {
    const pkg = JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version?: unknown };
    version = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  }
  return version;
}
