/**
 * The job directory: `<work>/<server>/<job pk>/`, the only place a job's files live.
 *
 * ```
 * <work>/server-<12 hex>/<pk>/
 *   input/        downloaded inputs (JobOutput<…>)          UFDL_INPUT_DIR
 *   output/       every regular file here is uploaded       UFDL_OUTPUT_DIR
 *   job.json      job, template, inputs, parameters         UFDL_JOB_JSON
 *   console.log   the child's stdout and stderr, interleaved as a terminal shows them (appended,
 *                 survives the agent; streamed live and followed for progress)
 *   exit-status   written atomically by the wrapper when the command ends
 *   lease         the deadline the agent renews; the wrapper stops the job once it passes
 *   fenced        written by the wrapper when it stopped the job for a lapsed lease
 *   log.txt       the `log` output: console.log, or its head and tail when it passes the cap
 * ```
 *
 * Job pks are per server, and one journal keeps the unfinished entries of every server the agent
 * worked for (`server.url` changed, and may change back): named by pk alone, server B's job 7 would
 * be created over — and so wipe — the kept directory of server A's unfinished job 7. So the pk sits
 * under a directory per server, named by a digest of the server's URL as the journal records it.
 *
 * The journal records each entry's directory (`job_dir`), and recovery goes back to that one
 * ({@link journalledJobDir}): entries of versions that named the directory `<work>/<pk>/` are found
 * where they are, and so are entries whose server address was renamed (`aliases.ts`).
 */
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile, rename } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { JobJson, TemplateJson } from '../../protocol/wire.js';
import { normalizeServerUrl } from '../journal/records.js';

/** Absolute paths of one job's directory. */
export interface JobDir {
  readonly pk: number;
  readonly root: string;
  readonly inputDir: string;
  readonly outputDir: string;
  readonly jobJsonPath: string;
  /** stdout and stderr of the child: one file, both descriptors, so their order is kept. */
  readonly consolePath: string;
  readonly exitStatusPath: string;
  readonly leasePath: string;
  readonly fencedPath: string;
  /** A script the wrapper runs to end the job's work outside its group when it fences the job (see `wrapper.ts`). */
  readonly outsideKillPath: string;
  readonly logPath: string;
}

/** How a per-server directory of the work directory is named: `server-` and 12 hex digits. */
export const SERVER_DIR_NAME = /^server-[0-9a-f]{12}$/;

/** How a job directory is named (in a server's directory, or directly in the work directory by older versions). */
export const JOB_DIR_NAME = /^[1-9][0-9]{0,15}$/;

/**
 * The name of the directory of `serverUrl`'s jobs: a digest of the URL the journal keys the server's
 * entries by (normalised as the journal does it), so it stays the same from one start to the next
 * and is a safe path segment whatever the URL holds.
 */
export function serverDirName(serverUrl: string): string {
  return `server-${createHash('sha256').update(normalizeServerUrl(serverUrl)).digest('hex').slice(0, 12)}`;
}

/** The paths of a new directory for job `pk` of `serverUrl` under `workDir` (no file system access). */
export function jobDirPaths(workDir: string, serverUrl: string, pk: number): JobDir {
  checkPk(pk);
  return jobDirAt(join(resolve(workDir), serverDirName(serverUrl), String(pk)), pk);
}

/** Where versions before the per-server directories put job `pk`: `<work>/<pk>/`. */
export function legacyJobDirRoot(workDir: string, pk: number): string {
  checkPk(pk);
  return join(resolve(workDir), String(pk));
}

/**
 * The directory a journal entry owns, in the work directory the agent has now. The path the entry
 * recorded (`job_dir`) says which layout made it: `<…>/server-<hex>/<pk>` is that server directory's
 * (which stays the entry's when its server's address is renamed, `aliases.ts`), `<…>/<pk>` is a
 * version's before the per-server directories. Only the last segments are taken, as the work
 * directory's: as before, a work directory moved or reached through another path is followed, and
 * recovery (which may delete the directory) never touches a path outside it. An entry that recorded
 * none (a finish journalled for a `current_job` the journal did not know: no directory was made) gets
 * its server's path — never `<work>/<pk>/`, which any server's job `pk` may have used.
 */
export function journalledJobDir(entry: { serverUrl: string; jobPk: number; jobDir: string | null }, workDir: string): JobDir {
  const recorded = entry.jobDir;
  if (recorded === null || basename(recorded) !== String(entry.jobPk)) return jobDirPaths(workDir, entry.serverUrl, entry.jobPk);
  const parent = basename(dirname(recorded));
  if (SERVER_DIR_NAME.test(parent)) return jobDirAt(join(resolve(workDir), parent, String(entry.jobPk)), entry.jobPk);
  return jobDirAt(legacyJobDirRoot(workDir, entry.jobPk), entry.jobPk);
}

/** The paths of job `pk`'s directory at `root` (no file system access). */
export function jobDirAt(root: string, pk: number): JobDir {
  checkPk(pk);
  return {
    pk,
    root,
    inputDir: join(root, 'input'),
    outputDir: join(root, 'output'),
    jobJsonPath: join(root, 'job.json'),
    consolePath: join(root, 'console.log'),
    exitStatusPath: join(root, 'exit-status'),
    leasePath: join(root, 'lease'),
    fencedPath: join(root, 'fenced'),
    outsideKillPath: join(root, 'outside-kill'),
    logPath: join(root, 'log.txt'),
  };
}

function checkPk(pk: number): void {
  // The pk becomes a path segment: only a positive integer may, so no `..` can ever be built here.
  if (!Number.isSafeInteger(pk) || pk <= 0) throw new TypeError(`job pk must be a positive integer, got ${String(pk)}`);
}

/**
 * Create the job directory `dir` afresh. Anything left by an earlier attempt of the same job is removed
 * first: stale files in `output/` would otherwise be uploaded as this attempt's outputs, and a stale
 * `exit-status` would claim the new child had already ended. Never call this when re-attaching.
 */
export async function createJobDir(dir: JobDir): Promise<JobDir> {
  await rm(dir.root, { recursive: true, force: true });
  await mkdir(dir.inputDir, { recursive: true });
  await mkdir(dir.outputDir, { recursive: true });
  return dir;
}

/** Remove a job directory (after the job is reported, unless the operator keeps job directories). */
export async function removeJobDir(dir: JobDir): Promise<void> {
  await rm(dir.root, { recursive: true, force: true });
}

/** The content of `UFDL_JOB_JSON`: everything a child needs to know about its job in one file. */
export interface JobJsonFile {
  job: JobJson;
  template: TemplateJson;
  /** Input values by name; downloaded inputs as `{value, type, path}` with the local path. */
  inputs: Record<string, { value: unknown; type: string; path?: string }>;
  /** Every template parameter, resolved (job value, else default). */
  parameters: Record<string, unknown>;
  /** The job directory's layout, so a program need not read the environment. */
  dirs: { job: string; input: string; output: string };
}

/** Build the `job.json` content from a job and what preparation resolved. */
export function jobJsonContent(
  dir: JobDir,
  job: JobJson,
  template: TemplateJson,
  parameters: Record<string, unknown>,
  inputPaths: Readonly<Record<string, string>> = {},
): JobJsonFile {
  const inputs: JobJsonFile['inputs'] = {};
  for (const [name, typed] of Object.entries(job.input_values)) {
    inputs[name] = Object.hasOwn(inputPaths, name)
      ? { value: typed.value, type: typed.type, path: inputPaths[name]! }
      : { value: typed.value, type: typed.type };
  }
  return { job, template, inputs, parameters, dirs: { job: dir.root, input: dir.inputDir, output: dir.outputDir } };
}

/** Write `job.json` atomically (temp file, then rename), so a child never reads half of it. */
export async function writeJobJson(dir: JobDir, content: JobJsonFile): Promise<void> {
  const tmp = `${dir.jobJsonPath}.tmp`;
  // Compact: indentation would grow with the nesting of a job's values, a multiple of their size.
  await writeFile(tmp, `${JSON.stringify(content)}\n`);
  await rename(tmp, dir.jobJsonPath);
}
