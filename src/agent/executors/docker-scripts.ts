/**
 * The two small `/bin/sh` programs a Docker job's child runs under the wrapper (`child/wrapper.ts`),
 * so that the pull, the container's output and its exit status go through the same machinery as every
 * other job: the job log, cancel and the time limit, the exit-status file, re-attach after a restart.
 * Every value arrives as a positional argument, never in the script's text.
 *
 * - {@link DOCKER_RUN_SCRIPT}: the image pull by policy (its output in the job log), then `exec` of
 *   `docker run`, attached, so the container's output lands in the job's log file and the CLI's exit
 *   status is the container's.
 * - {@link DOCKER_FOLLOW_SCRIPT}: after an agent restart that found the container but not its
 *   `docker run` client (a systemd stop kills the client with the agent, never the container, which
 *   belongs to dockerd): the container's output since the log file was last written, then its exit
 *   status from `docker wait`.
 */

/** The status a failed pull or a missing image exits with: `docker run`'s own for "could not run". */
export const DOCKER_FAILURE_STATUS = 125;

/** Lines the scripts print start with this, so the agent can find them in the log. */
export const LAUNCHER_PREFIX = 'ufdl-docker:';

/** `sh -c DOCKER_RUN_SCRIPT ufdl-docker <docker> <pull policy> <image> <docker run arguments…>` */
export const DOCKER_RUN_SCRIPT = [
  'ufdl_docker=$1 ufdl_policy=$2 ufdl_image=$3',
  'shift 3',
  'ufdl_present() { "$ufdl_docker" image inspect "$ufdl_image" >/dev/null 2>&1; }',
  'ufdl_pull() {',
  `  printf '%s pulling image %s (pull policy: %s)\\n' '${LAUNCHER_PREFIX}' "$ufdl_image" "$ufdl_policy"`,
  '  "$ufdl_docker" pull "$ufdl_image" && return 0',
  `  printf '%s could not pull image %s\\n' '${LAUNCHER_PREFIX}' "$ufdl_image" >&2`,
  `  exit ${DOCKER_FAILURE_STATUS}`,
  '}',
  'case $ufdl_policy in',
  '  always) ufdl_pull ;;',
  '  missing) ufdl_present || ufdl_pull ;;',
  '  *)',
  '    if ! ufdl_present; then',
  `      printf '%s image %s is not on this node, and the pull policy is never\\n' '${LAUNCHER_PREFIX}' "$ufdl_image" >&2`,
  `      exit ${DOCKER_FAILURE_STATUS}`,
  '    fi ;;',
  'esac',
  'exec "$ufdl_docker" "$@"',
].join('\n');

/** `sh -c DOCKER_FOLLOW_SCRIPT ufdl-docker <docker> <container> <since (RFC 3339)>` */
export const DOCKER_FOLLOW_SCRIPT = [
  'ufdl_docker=$1 ufdl_name=$2 ufdl_since=$3',
  `printf '%s the agent restarted; following container %s again\\n' '${LAUNCHER_PREFIX}' "$ufdl_name"`,
  '"$ufdl_docker" logs --follow --since "$ufdl_since" "$ufdl_name"',
  'ufdl_status=$("$ufdl_docker" wait "$ufdl_name")',
  'case $ufdl_status in',
  '  "" | *[!0-9]*)',
  `    printf '%s could not learn how container %s ended\\n' '${LAUNCHER_PREFIX}' "$ufdl_name" >&2`,
  `    exit ${DOCKER_FAILURE_STATUS} ;;`,
  'esac',
  'exit "$ufdl_status"',
].join('\n');

/** The `$0` of both scripts, which `ps` shows. */
export const LAUNCHER_NAME = 'ufdl-docker';
