/**
 * The outputs a child left: every top-level regular file of `UFDL_OUTPUT_DIR` (the job contract in
 * README.md), named after the file, typed from the template's declared `outputs`, else `BLOB`. Not
 * hashed here: the upload hashes each file as it sends it, so a large output is read once.
 *
 * Not recursive: an output name is one URL segment, so `a/b` has no faithful name; a job that wants a
 * tree uploads an archive. What is skipped is listed with the reason, for the job's log.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openRegularFile, type FileDigest } from '../../client/file-reads.js';
import { LOG_OUTPUT_NAME, outputNameProblem } from './names.js';

/** The type of an output whose file name the template does not declare. */
export const DEFAULT_OUTPUT_TYPE = 'BLOB';

/** One file to upload. */
export interface OutputFile extends Partial<FileDigest> {
  /** The output name: the file name. */
  name: string;
  /** The output type string (URL-encode it in the upload route). */
  type: string;
  /** Absolute path of the file. */
  path: string;
}

/** A directory entry that is not uploaded, and why. */
export interface SkippedOutput {
  /** The entry's name (invalid UTF-8 shown with replacement characters). */
  name: string;
  reason: string;
}

/** The result of {@link scanOutputs}. */
export interface OutputScan {
  /** Sorted by name, so uploads happen in a stable order. */
  files: OutputFile[];
  skipped: SkippedOutput[];
  /** Declared output names with no file: a success without them is an error. */
  missing: string[];
}

/** List and type the outputs in `outputDir`. A missing directory has no outputs. */
export async function scanOutputs(outputDir: string, declared: Readonly<Record<string, string>> = {}): Promise<OutputScan> {
  const files: OutputFile[] = [];
  const skipped: SkippedOutput[] = [];
  const regular: { name: string; path: string }[] = [];
  let entries: Buffer[];
  try {
    // As raw bytes: a name that is not valid UTF-8 would otherwise be decoded into one that names
    // no file (or another file).
    entries = await readdir(outputDir, { encoding: 'buffer' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { files, skipped, missing: Object.keys(declared).sort() };
    throw err;
  }
  for (const raw of entries) {
    const name = raw.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(raw)) {
      skipped.push({ name, reason: 'the name is not valid UTF-8' });
      continue;
    }
    const problem = outputNameProblem(name);
    if (problem) {
      skipped.push({ name, reason: `the name ${problem}` });
      continue;
    }
    if (name === LOG_OUTPUT_NAME) {
      skipped.push({ name, reason: `the name '${LOG_OUTPUT_NAME}' is reserved for the job log` });
      continue;
    }
    const path = join(outputDir, name);
    const stat = await lstat(path);
    if (!stat.isFile()) {
      skipped.push({ name, reason: describeNonFile(stat) });
      continue;
    }
    regular.push({ name, path });
  }
  // Opened once (and closed): a file the agent cannot read is skipped with the reason now, not
  // found out by its upload.
  for (const { name, path } of regular) {
    try {
      await (await openRegularFile(path)).handle.close();
      files.push({ name, type: declared[name] ?? DEFAULT_OUTPUT_TYPE, path });
    } catch (err) {
      skipped.push({ name, reason: `cannot be read: ${(err as Error).message}` });
    }
  }
  files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const present = new Set(files.map((f) => f.name));
  const missing = Object.keys(declared)
    .filter((name) => !present.has(name))
    .sort();
  return { files, skipped, missing };
}

function describeNonFile(stat: { isDirectory(): boolean; isSymbolicLink(): boolean }): string {
  if (stat.isDirectory()) return 'is a directory (only top-level regular files are uploaded; archive a tree)';
  if (stat.isSymbolicLink()) return 'is a symbolic link (only regular files are uploaded)';
  return 'is not a regular file';
}
