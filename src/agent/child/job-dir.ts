/**
 * The job directory: `<work>/<job pk>/`, the only place a job's files live.
 *
 * ```
 * <work>/<pk>/
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
 * Named by pk alone so that an agent restarted after a crash finds it again from the journal.
 */
import { mkdir, rm, writeFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { JobJson, TemplateJson } from '../../protocol/wire.js';

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

/** The paths of job `pk`'s directory under `workDir` (no file system access). */
export function jobDirPaths(workDir: string, pk: number): JobDir {
  // The pk becomes a path segment: only a positive integer may, so no `..` can ever be built here.
  if (!Number.isSafeInteger(pk) || pk <= 0) throw new TypeError(`job pk must be a positive integer, got ${String(pk)}`);
  const root = join(resolve(workDir), String(pk));
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

/**
 * Create job `pk`'s directory afresh. Anything left by an earlier attempt of the same job is removed
 * first: stale files in `output/` would otherwise be uploaded as this attempt's outputs, and a stale
 * `exit-status` would claim the new child had already ended. Never call this when re-attaching.
 */
export async function createJobDir(workDir: string, pk: number): Promise<JobDir> {
  const dir = jobDirPaths(workDir, pk);
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
