/**
 * A template's progress regex is matched against every line a job prints. A pattern with nested
 * quantifiers backtracks for a time exponential in the length of a line that nearly matches: without
 * a bound, one such line stops the agent's event loop for hours. Matched in a child process, so a
 * regression shows as that child killed at the deadline rather than as a test run that never ends.
 */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readSettings } from '../../../src/agent/executors/settings.js';
import { buildOnce } from '../../helpers/build.js';
import { prepareError } from '../executors/fixtures.js';

const DIST = resolve(import.meta.dirname, '../../../dist');
const run = promisify(execFile);

/** Parse `lines` with `pattern` as the agent does, in a child given `timeoutMs`; its answers, in order. */
async function parseInChild(pattern: string, lines: string[], timeoutMs: number): Promise<unknown[]> {
  const script = `
    import { readSettings } from ${JSON.stringify(pathToFileURL(join(DIST, 'agent/executors/settings.js')).href)};
    import { regexProgressParser } from ${JSON.stringify(pathToFileURL(join(DIST, 'agent/progress/regex-parser.js')).href)};
    const parse = regexProgressParser(readSettings({ progress_regex: ${JSON.stringify(pattern)} }).progressRegex);
    const lines = ${JSON.stringify(lines)};
    console.log(JSON.stringify(lines.map((line) => parse(line, 0) ?? null)));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: timeoutMs, killSignal: 'SIGKILL' });
  return JSON.parse(stdout) as unknown[];
}

describe('a progress regex that backtracks exponentially', () => {
  it('matches a line that nearly matches in bounded time, and still reads the lines it matches', async () => {
    await buildOnce();
    // `(\d+)+` then a character that is not `%`: 2^n ways to split n digits, each tried, unbounded.
    // Unbounded, 60 digits take longer than the universe has existed; 40 seconds is far beyond
    // what the bounded match of all these lines takes on a loaded machine.
    const pattern = '^(?<percent>(\\d+)+)%$';
    const lines = ['1'.repeat(60) + 'x', '45%', '7'.repeat(4095) + 'x', 'epoch 3', '100%'];
    const answers = await parseInChild(pattern, lines, 40_000);
    expect(answers).toEqual([null, { progress: 0.45, data: {} }, null, null, { progress: 1, data: {} }]);
  }, 60_000);
});

describe('a progress regex no bound holds for', () => {
  it.each([
    ['a look-ahead', 'loss (?=\\d)(?<progress>[\\d.]+)'],
    ['a look-behind', '(?<=progress: )(?<progress>[\\d.]+)'],
    ['a negative look-ahead', '(?!x)(?<percent>\\d+)%'],
    ['a back-reference', '(?<q>["\'])(?<progress>[\\d.]+)\\k<q>'],
    ['a numbered back-reference', '(a+)\\1 (?<progress>[\\d.]+)'],
  ])('is refused: %s', (_what, pattern) => {
    const err = prepareError(() => readSettings({ progress_regex: pattern }));
    expect(err.code).toBe('UFDL_ERR_AGENT_PARAM_BAD');
    expect(err.message).toMatch(/^Parameter 'progress_regex': uses a back-reference .* or a look-around .*write it without them$/);
  });

  it('is told from one the bound holds for: the usual patterns are accepted', () => {
    for (const pattern of ['Epoch (?<epoch>\\d+)/(?<epochs>\\d+)', '(?<percent>\\d+(?:\\.\\d+)?)%', '^\\s*(?<progress>0?\\.\\d+|1\\.0*)\\b', 'step \\d+ of \\d+: (?<progress>[\\d.]+%)']) {
      expect(readSettings({ progress_regex: pattern }).progressRegex?.source).toBeDefined();
    }
  });
});
