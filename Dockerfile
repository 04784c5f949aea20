# One image for the agent (`run`, the default), the embedded server (`serve`) and both (`standalone`):
#
#   docker build -t ufdl-agent .
#   docker build --build-arg NODE_IMAGE=node:24-bookworm-slim -t ufdl-agent .   # another Node line
#   docker run -d --name ufdl-server -p 8000:8000 -v ufdl-server:/var/lib/ufdl-agent ufdl-agent serve
#   docker run -d --name ufdl-agent --gpus all -e UFDL_AGENT_SERVER_URL=http://server:8000 \
#     -e UFDL_AGENT_SERVER_PASSWORD=… -v ufdl-agent:/var/lib/ufdl-agent -v ufdl-work:/var/lib/ufdl-agent/work ufdl-agent
#
# docs/OPERATIONS.md ("Run in Docker") explains volumes, signals, GPUs and upgrades; deploy/compose.yaml runs
# a server and two agents.

# The Node.js image of both stages: the active LTS line by default. Any Debian 12 (bookworm) Node image
# of a line that package.json's `engines` lists works; docs/OPERATIONS.md ("Node.js versions") says why
# these lines. Both stages must use the same one: the native module built in the first runs in the
# second. (No `# syntax=` line: it would make BuildKit fetch a frontend image from a registry.)
ARG NODE_IMAGE=node:26-bookworm-slim

# ---- build: compile TypeScript and the native module (better-sqlite3), then drop dev dependencies ----
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first, so that a source change does not reinstall them. `npm ci` also builds the
# package's own native module (binding.gyp: native/notify.c, systemd notifications).
COPY package.json package-lock.json binding.gyp ./
COPY native ./native
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build-cli.mjs ./scripts/
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime: Node, tini and the built package; nothing else ----
FROM ${NODE_IMAGE}
# tini is PID 1: it forwards SIGTERM/SIGINT/SIGQUIT to the agent (and only to it: the agent stops its
# jobs' process groups itself) and reaps orphans. ca-certificates for https server URLs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ufdl \
 && useradd --system --uid 10001 --gid ufdl --home-dir /var/lib/ufdl-agent --no-create-home \
      --shell /usr/sbin/nologin ufdl \
 && mkdir -p /var/lib/ufdl-agent/work /var/lib/ufdl-agent/server \
 && chown -R ufdl:ufdl /var/lib/ufdl-agent \
 && chmod 0750 /var/lib/ufdl-agent

WORKDIR /app
# Owned by root and read-only for the service user.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
# What runs: the CLI's bundle (dist/cli: every command, the server and the agent) and the dashboard
# (dist/ui); tsc's per-module output in the rest of dist/ is for the tests and benchmarks.
COPY --from=build /app/dist/cli ./dist/cli
COPY --from=build /app/dist/ui ./dist/ui
COPY --from=build /app/build/Release/ufdl_notify.node ./build/Release/ufdl_notify.node
COPY config ./config
COPY deploy/entrypoint.sh ./entrypoint.sh

# The journal (journal.sqlite3, beside work_dir) and the server's data live in /var/lib/ufdl-agent,
# the job directories in /var/lib/ufdl-agent/work. Values from a mounted TOML file
# (UFDL_AGENT_CONFIG) lose to these environment variables; override them with -e.
ENV NODE_ENV=production \
    UFDL_AGENT_WORK_DIR=/var/lib/ufdl-agent/work \
    UFDL_AGENT_SERVE_DATA_DIR=/var/lib/ufdl-agent/server \
    UFDL_AGENT_SERVE_HOST=0.0.0.0 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
VOLUME ["/var/lib/ufdl-agent", "/var/lib/ufdl-agent/work"]
# `standalone` creates ./data relative to the working directory: keep it on the volume.
WORKDIR /var/lib/ufdl-agent

# The embedded server (`serve`, `standalone`). The agent's status endpoint (8001) listens on loopback
# unless UFDL_AGENT_STATUS_HOST=0.0.0.0 (for Prometheus); the health check below reaches it anyway.
EXPOSE 8000

# The uid of `ufdl`, numeric so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001

# The agent drains on the first SIGTERM: give `docker stop` a timeout above agent.drain_timeout
# (default 600 s), e.g. `docker stop -t 900`, or `stop_grace_period: 15m` in compose.
STOPSIGNAL SIGTERM

# /livez of whatever this container runs, chosen from PID 1's command line: the agent's status
# endpoint for `run`, the server for `serve`, both for `standalone`. UFDL_HEALTHCHECK_URL (a
# comma-separated list) overrides, e.g. when the ports are set in a TOML file rather than in the
# environment. curl is not in the image, so Node's fetch does the request.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD node -e '\
const e = process.env;\
let argv = [];\
try { argv = require("fs").readFileSync("/proc/1/cmdline", "utf8").split("\0"); } catch {}\
const mode = argv[argv.indexOf("/app/entrypoint.sh") + 1];\
const agent = "http://127.0.0.1:" + (e.UFDL_AGENT_STATUS_PORT || 8001) + "/livez";\
const server = "http://127.0.0.1:" + (e.UFDL_AGENT_SERVE_PORT || 8000) + "/livez";\
const urls = e.UFDL_HEALTHCHECK_URL ? e.UFDL_HEALTHCHECK_URL.split(",")\
  : mode === "serve" ? [server] : mode === "standalone" ? [agent, server] : [agent];\
Promise.all(urls.map((u) => fetch(u, { signal: AbortSignal.timeout(5000) }).then((r) => {\
  if (!r.ok) throw new Error(u + " answered " + r.status); })))\
  .then(() => process.exit(0), (err) => { console.error(String(err.cause || err)); process.exit(1); });'

# entrypoint.sh runs `node [V8 flags] /app/dist/cli/main.js <command>`: the agent (`run`) with a small
# young generation, which keeps it under 80 MiB at rest; the server with V8's defaults.
ENTRYPOINT ["tini", "--", "/app/entrypoint.sh"]
CMD ["run"]
