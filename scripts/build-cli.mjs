#!/usr/bin/env node
// The CLI as shipped: `dist/cli/main.js` (the `ufdl-agent` bin) and its chunks in `dist/cli/chunks/`,
// bundled from src/cli/main.ts by esbuild. Run by `npm run build` after tsc (which writes the rest of
// dist/, the per-module output that tests and benchmarks import) and before nothing else reads
// dist/cli/.
//
// Why a bundle: Node 20 resolves, reads and compiles every ES module of a command separately and has
// no compile cache for them; a short command such as `ufdl-agent jobs` spent about as long on its ~45
// modules and commander's files as on the request. Bundled, it loads a handful of files.
//
// - Code splitting: each command stays behind its dynamic import in main.ts, so `jobs` loads neither
//   the server (serve, standalone) nor the agent (run), and what a lazy import inside a command loads
//   (transfers, the live log's web socket, the TOML parser) stays a chunk of its own.
// - The runtime dependencies stay in node_modules (external), except commander, which every command
//   loads: native addons (better-sqlite3), packages that find files or start threads at run time
//   (pino's transports, pg in its statement thread, the checkpointer's better-sqlite3), and nothing
//   gained by bundling packages only the long-running commands load.
// - Files the code reads at run time are found from the package root (src/package-files.ts), so the
//   chunks' depth does not matter.
//
//   node scripts/build-cli.mjs
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');
const OUT = join(ROOT, 'dist', 'cli');
const BUNDLED = new Set(['commander']);

const { dependencies } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const external = Object.keys(dependencies)
  .filter((name) => !BUNDLED.has(name))
  .flatMap((name) => [name, `${name}/*`]);

// commander loads node:child_process when it starts, for executable subcommands (a `git-foo` beside
// `git`), which ufdl-agent has none of; loading it (and the net, dgram and socket modules it loads)
// cost a short command ~6 M instructions (3 %). Here commander gets it on first use.
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^node:child_process$/ }, ({ importer }) =>
      /[\\/]node_modules[\\/]commander[\\/]/.test(importer) ? { path: 'node:child_process', namespace: 'lazy-child-process' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-child-process' }, () => ({
      contents: "module.exports = new Proxy({}, { get: (_, key) => require('node:child_process')[key] });",
      loader: 'js',
    }));
  },
};

const common = {
  bundle: true,
  plugins: [lazyChildProcess],
  platform: 'node',
  target: 'node20',
  external,
  // Whitespace and comments (commander's JSDoc is half its source) cost compile time at every start;
  // names stay, so a stack trace still reads, and the source map leads back to src/.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  legalComments: 'eof',
  logLevel: 'warning',
};

// tsc's per-module output of src/cli is replaced by the bundle: one way to run the CLI, not two.
rmSync(OUT, { recursive: true, force: true });

// The entry (the `ufdl-agent` bin): one file, importing nothing of the other two but by path at run time.
const ANY_COMMAND = './commands/all.js';
await build({
  ...common,
  entryPoints: [join(ROOT, 'src', 'cli', 'main.ts')],
  outfile: join(OUT, 'main.js'),
  format: 'esm',
  plugins: [...common.plugins, { name: 'chunked-build', setup: (b) => b.onResolve({ filter: /^\.\/commands\/all\.js$/ }, ({ path }) => (path === ANY_COMMAND ? { path, external: true } : undefined)) }],
});
// Any command: `commands/all.js` and its chunks, each command behind its dynamic import.
await build({
  ...common,
  entryPoints: [{ in: join(ROOT, 'src', 'cli', 'commands', 'all.ts'), out: 'commands/all' }],
  outdir: OUT,
  chunkNames: 'chunks/[name]-[hash]',
  splitting: true,
  format: 'esm',
  // commander is CommonJS: its `require('node:events')` and the like need a real `require` in an ES module.
  banner: { js: "import { createRequire as __ufdlCreateRequire } from 'node:module';\nconst require = __ufdlCreateRequire(import.meta.url);" },
});
// The short commands in one script, which main.js compiles with a V8 code cache (src/cli/cached-bundle.ts
// gives it `require` and, for `import.meta.url`, the parameter named here).
await build({
  ...common,
  entryPoints: [join(ROOT, 'src', 'cli', 'commands', 'short.ts')],
  outfile: join(OUT, 'short-commands.cjs'),
  format: 'cjs',
  define: { 'import.meta.url': '__ufdlImportMetaUrl' },
  // A script compiled by vm.Script can only `import()` with an experimental flag (or, for
  // vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER, an experimental warning) in Node 20: the packages the
  // short commands load on demand (got, ws, node:https) are `require`d instead, which since Node
  // 20.19 loads an ES module package (got) as well. `require` gives such a package's namespace, so
  // take its named exports: a default import would be the whole namespace (src/client/http.ts).
  supported: { 'dynamic-import': false },
});
