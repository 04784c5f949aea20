/**
 * Optional parameters every executor honours (docs/ARCHITECTURE.md, "Executors"). Like the reference's templates, a template
 * configures its executor through parameters, usually `const` ones with defaults:
 *
 * | parameter        | type   | meaning                                                               |
 * |------------------|--------|-----------------------------------------------------------------------|
 * | `progress_regex` | `str`  | a regex with a named group `progress` (0–1, or `NN%`), `percent`      |
 * |                  |        | (0–100), or `epoch` and `epochs` (progress = epoch / epochs); no      |
 * |                  |        | back-references or look-arounds (`progress/bounded-regexp.ts`)        |
 * | `outputs`        | `JSON` | `{file name: type}`, the type of each output (others are `BLOB`)      |
 * | `time_limit`     | `float`| wall-clock seconds; the job is stopped and fails when exceeded        |
 */
import { parseTypeString, TypeStringError } from '../../protocol/type-string.js';
import { outputNameProblem } from '../../protocol/output-names.js';
import { PrepareError } from './errors.js';
import { compileBoundedRegExp, type UnboundedPattern } from '../progress/bounded-regexp.js';

/** The executor-independent settings of one job. */
export interface ExecutorSettings {
  /** The template's progress parser, if it has one. */
  progressRegex: RegExp | undefined;
  /** Declared output types by file name; a file not listed is uploaded as `BLOB`. */
  outputTypes: Readonly<Record<string, string>>;
  /** The wall-clock limit, if any. */
  timeLimitMs: number | undefined;
}

/** Names of the settings parameters, which are never part of a command line. */
export const SETTING_PARAMETERS = ['progress_regex', 'outputs', 'time_limit'] as const;

/** Groups a progress regex may name; see the module comment. */
const PROGRESS_GROUPS = /\(\?<(progress|percent|epochs?)>/g;

/**
 * Read the settings from resolved parameter values (absent ones mean "not set").
 * @throws PrepareError `UFDL_ERR_AGENT_PARAM_BAD` naming the parameter whose value is unusable.
 */
export function readSettings(parameters: Readonly<Record<string, unknown>>): ExecutorSettings {
  return {
    progressRegex: readProgressRegex(parameters['progress_regex']),
    outputTypes: readOutputTypes(parameters['outputs']),
    timeLimitMs: readTimeLimit(parameters['time_limit']),
  };
}

function bad(name: string, message: string, cause?: unknown): PrepareError {
  return new PrepareError('UFDL_ERR_AGENT_PARAM_BAD', `Parameter '${name}': ${message}`, { subject: name, cause });
}

function readProgressRegex(value: unknown): RegExp | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw bad('progress_regex', `expected a string, got ${JSON.stringify(value)}`);
  let regex: RegExp | UnboundedPattern;
  try {
    regex = compileBoundedRegExp(value);
  } catch (err) {
    throw bad('progress_regex', `not a valid regular expression (${(err as Error).message})`, err);
  }
  if (regex === 'unbounded') {
    throw bad(
      'progress_regex',
      "uses a back-reference (\\1, \\k<name>) or a look-around ((?=…), (?!…), (?<=…), (?<!…)), which can make one line of the job's output take hours to match; write it without them",
    );
  }
  const groups = new Set([...value.matchAll(PROGRESS_GROUPS)].map((m) => m[1]));
  if (!groups.has('progress') && !groups.has('percent') && !(groups.has('epoch') && groups.has('epochs'))) {
    throw bad('progress_regex', 'needs a named group (?<progress>…), (?<percent>…), or both (?<epoch>…) and (?<epochs>…)');
  }
  return regex;
}

function readOutputTypes(value: unknown): Record<string, string> {
  if (value === undefined || value === null || value === '') return {};
  let object: unknown = value;
  if (typeof value === 'string') {
    // A `str` parameter holding JSON is accepted too: some UIs cannot send a JSON-typed value.
    try {
      object = JSON.parse(value) as unknown;
    } catch (err) {
      throw bad('outputs', 'not valid JSON', err);
    }
  }
  if (typeof object !== 'object' || object === null || Array.isArray(object)) {
    throw bad('outputs', `expected a JSON object {"file name": "type"}, got ${JSON.stringify(value)}`);
  }
  const types: Record<string, string> = {};
  for (const [name, type] of Object.entries(object)) {
    const problem = outputNameProblem(name);
    if (problem) throw bad('outputs', `output name ${JSON.stringify(name)} ${problem}`);
    if (typeof type !== 'string') throw bad('outputs', `the type of '${name}' must be a string`);
    try {
      parseTypeString(type);
    } catch (err) {
      if (err instanceof TypeStringError) throw bad('outputs', `the type of '${name}': ${err.message}`, err);
      throw err;
    }
    types[name] = type;
  }
  return types;
}

function readTimeLimit(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const seconds = typeof value === 'string' ? Number(value.trim()) : value;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    throw bad('time_limit', `expected a number of seconds, got ${JSON.stringify(value)}`);
  }
  // 0 means "no limit", as an unset parameter does.
  return seconds === 0 ? undefined : Math.round(seconds * 1000);
}
