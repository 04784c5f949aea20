#!/usr/bin/env node
/**
 * The `ufdl-agent` command. A short command (commands/short.ts) runs from its own bundle, compiled
 * with a V8 code cache (cached-bundle.ts); the long-running commands, help and unknown commands run
 * from the program and its chunks (program.ts, commands/all.ts). See docs/ARCHITECTURE.md, "What the
 * build makes".
 */
import { fileURLToPath } from 'node:url';
import { loadBundle } from './cached-bundle.js';
import { commandName, isShortCommand } from './command-line.js';
import { EXIT } from './exit-codes.js';

// `ufdl-agent jobs | head` closes the pipe early; that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.OK);
  throw err;
});

const named = commandName();
// Built by scripts/build-cli.mjs beside this file; without it (a build of tsc alone), the chunks serve.
const shortCommands = isShortCommand(named) ? loadBundle(fileURLToPath(new URL('./short-commands.cjs', import.meta.url)), named) : undefined;
if (shortCommands !== undefined) {
  await (shortCommands.exports.runShortCommand as () => Promise<void>)();
  shortCommands.saveCache();
} else {
  await (await import('./commands/all.js')).runAnyCommand();
}
