/**
 * The template's progress parser for unmodified programs (the `progress_regex` parameter): a regex
 * whose named groups give the value.
 *
 * - `progress`: a number in [0, 1], or a percentage when followed by `%` inside the group (`45%`);
 * - `percent`: a number in [0, 100];
 * - `epoch` and `epochs`: progress is epoch / epochs, and both go into the body.
 *
 * Values outside [0, 1] are ignored, not clamped: they mean the regex matched something else.
 */
import type { ProgressParser, ProgressUpdate } from './update.js';

/** Options of {@link regexProgressParser}. */
export interface RegexParserOptions {
  /**
   * Only this many characters of a line are matched. The regex comes from a template; its matches
   * are bounded to linear time (`bounded-regexp.ts`), and this bounds that time per line.
   * @default 4096
   */
  maxInputLength?: number;
}

/** A {@link ProgressParser} from a template's regex. */
export function regexProgressParser(regex: RegExp, options: RegexParserOptions = {}): ProgressParser {
  const maxInputLength = options.maxInputLength ?? 4096;
  // A global or sticky regex keeps state between exec calls; progress lines are independent.
  const re = regex.global || regex.sticky ? new RegExp(regex.source, regex.flags.replace(/[gy]/g, '')) : regex;
  return (line: string): ProgressUpdate | undefined => {
    const groups = re.exec(line.length > maxInputLength ? line.slice(0, maxInputLength) : line)?.groups;
    if (!groups) return undefined;
    return fromGroups(groups);
  };
}

function fromGroups(groups: Record<string, string | undefined>): ProgressUpdate | undefined {
  if (groups['progress'] !== undefined) {
    const text = groups['progress'].trim();
    const value = text.endsWith('%') ? Number(text.slice(0, -1)) / 100 : Number(text);
    return inRange(value) ? { progress: value, data: {} } : undefined;
  }
  if (groups['percent'] !== undefined) {
    const value = Number(groups['percent'].trim()) / 100;
    return inRange(value) ? { progress: value, data: {} } : undefined;
  }
  if (groups['epoch'] !== undefined && groups['epochs'] !== undefined) {
    const epoch = Number(groups['epoch']);
    const epochs = Number(groups['epochs']);
    if (!(epochs > 0)) return undefined;
    const value = epoch / epochs;
    return inRange(value) ? { progress: value, data: { epoch, epochs } } : undefined;
  }
  return undefined;
}

function inRange(value: number): boolean {
  return Number.isFinite(value) && value >= 0 && value <= 1;
}

/** A parser wrapped so that its first exception disables it for the rest of the job (the reference's rule). */
export interface GuardedParser extends ProgressParser {
  /** Whether the parser threw and is now off. */
  readonly disabled: boolean;
}

/**
 * Wrap `parser` so that an exception disables it (and is reported once to `onError`) instead of
 * breaking the follower: one bad line must not stop the job, and a parser that throws once would
 * likely throw on every following line.
 */
export function guardParser(parser: ProgressParser, onError: (err: unknown) => void): GuardedParser {
  let disabled = false;
  const guarded = (line: string, last: number): ProgressUpdate | undefined => {
    if (disabled) return undefined;
    try {
      return parser(line, last);
    } catch (err) {
      disabled = true;
      onError(err);
      return undefined;
    }
  };
  return Object.defineProperty(guarded, 'disabled', { get: () => disabled }) as GuardedParser;
}
