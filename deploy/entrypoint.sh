#!/bin/sh
# The image's entry point, under tini (PID 1): `ufdl-agent <command> [options]` on the image's Node.js.
# The agent (`run`, the default command) gets a young generation of 1 MiB semi-spaces instead of V8's
# 16 MiB: it allocates little and mostly waits, and the default would keep an idle agent above 80 MiB
# resident (docs/BENCHMARKS.md, "Agent at rest"). A V8 flag takes effect only on node's command line
# (NODE_OPTIONS would reach the jobs too). The server (`serve`, `standalone`) keeps the default, which
# its request rate needs. The systemd unit of the agent starts it with the same flag.
case "$1" in
  run) exec node --max-semi-space-size=1 /app/dist/cli/main.js "$@" ;;
  *) exec node /app/dist/cli/main.js "$@" ;;
esac
