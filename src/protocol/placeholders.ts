/**
 * The grammar of a template body's placeholders, shared by the agent (which expands them) and the
 * server (which checks `ufdl_agent.Shell` bodies at import):
 *
 * - `${name}` names a parameter or an input;
 * - `${+flag:text}` keeps `text` when the boolean `flag` is true, `${-flag:text}` when it is false;
 *   `text` is the template's own and may itself contain placeholders.
 *
 * Names are spelled as the reference's templates spell them (`num-classes`, `dataset_options`).
 */

/** A placeholder name. */
export const PLACEHOLDER_NAME = '[A-Za-z_][A-Za-z0-9_.-]*';

/** `${name}` and nothing else. */
export const WHOLE_PLACEHOLDER = new RegExp(`^\\$\\{(${PLACEHOLDER_NAME})\\}$`);
/** The body of a plain placeholder (between `${` and `}`). */
export const PLAIN_BODY = new RegExp(`^(${PLACEHOLDER_NAME})$`);
/** The body of a flag placeholder: sign, name, kept text. */
export const FLAG_BODY = new RegExp(`^([+-])(${PLACEHOLDER_NAME}):([\\s\\S]*)$`);
/** A plain placeholder at a given position (sticky: set `lastIndex`, then `exec`). */
export function plainPlaceholderAt(text: string, at: number): { name: string; length: number } | undefined {
  const sticky = new RegExp(`\\$\\{(${PLACEHOLDER_NAME})\\}`, 'y');
  sticky.lastIndex = at;
  const match = sticky.exec(text);
  return match ? { name: match[1]!, length: match[0].length } : undefined;
}

/** Index of the `}` that closes a placeholder whose body starts at `from`, counting nested `${`; -1 if none. */
export function closingBrace(text: string, from: number): number {
  let depth = 0;
  for (let j = from; j < text.length; j++) {
    if (text[j] === '$' && text[j + 1] === '{') {
      depth++;
      j++;
    } else if (text[j] === '}') {
      if (depth === 0) return j;
      depth--;
    }
  }
  return -1;
}

/**
 * Rewrite each `${…}` of `text` (outermost first) with `replace(body, literal)`; where it answers
 * `undefined`, `${` is kept and the walk goes on inside the braces. An unterminated `${` is text.
 */
export function mapPlaceholders(text: string, replace: (body: string, literal: string) => string | undefined): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('${', i);
    if (start < 0) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, start);
    const end = closingBrace(text, start + 2);
    if (end < 0) {
      out += text.slice(start);
      break;
    }
    const replaced = replace(text.slice(start + 2, end), text.slice(start, end + 1));
    if (replaced === undefined) {
      out += '${';
      i = start + 2;
    } else {
      out += replaced;
      i = end + 1;
    }
  }
  return out;
}

/**
 * Resolve the flags of `text` and leave every other `${…}` as it is. `truth(name)` says whether a
 * flag is on (and may throw for a flag that names nothing or is not a boolean). Kept text is resolved
 * in turn, so flags may nest, also inside the shell's own `${X:-${+f:a}}`.
 */
export function resolveFlags(text: string, truth: (name: string, literal: string) => boolean): string {
  return mapPlaceholders(text, (body, literal) => {
    const flag = FLAG_BODY.exec(body);
    if (!flag) return undefined;
    const [, sign, name, kept] = flag as unknown as [string, '+' | '-', string, string];
    return truth(name, literal) === (sign === '+') ? resolveFlags(kept, truth) : '';
  });
}
