/**
 * UFDL type strings, with the reference's grammar: `Name`, `Name<arg, arg, …>` where an argument is a nested
 * type, a quoted string constant (`'…'`), an int or float constant, or `true`/`false`.
 *
 *   PK<Dataset<Domain<'Image Classification'>>>     Compressed<JSON, 8>     JobOutput<Model<…>>
 *
 * The server parses them wherever a decision depends on one (create-job validation, contracts) and
 * stores the normalised form (re-printed from the parse), as the reference does.
 */

export type TypeArg = TypeNode | { kind: 'str'; value: string } | { kind: 'num'; value: number } | { kind: 'bool'; value: boolean };

export interface TypeNode {
  kind: 'type';
  name: string;
  args: TypeArg[];
}

export class TypeStringError extends Error {
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`Error parsing type-string "${input}": ${reason}`);
    this.name = 'TypeStringError';
  }
}

const NAME = /[A-Za-z_][A-Za-z0-9_.]*/y;
const NUMBER = /-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?/y;

/** Parse a type string; throws {@link TypeStringError} with the position of the problem. */
export function parseTypeString(input: string): TypeNode {
  let pos = 0;
  const fail = (reason: string): never => {
    throw new TypeStringError(input, `${reason} at position ${pos}`);
  };
  const skipSpace = () => {
    while (pos < input.length && /\s/.test(input[pos]!)) pos++;
  };
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = pos;
    const m = re.exec(input);
    if (!m) return undefined;
    pos += m[0].length;
    return m[0];
  };

  const parseType = (): TypeNode => {
    skipSpace();
    const name = match(NAME);
    if (name === undefined) return fail('expected a type name');
    skipSpace();
    const args: TypeArg[] = [];
    if (input[pos] === '<') {
      pos++;
      for (;;) {
        args.push(parseArg());
        skipSpace();
        if (input[pos] === ',') {
          pos++;
          continue;
        }
        if (input[pos] === '>') {
          pos++;
          break;
        }
        fail("expected ',' or '>'");
      }
    }
    return { kind: 'type', name, args };
  };

  const parseArg = (): TypeArg => {
    skipSpace();
    const c = input[pos];
    if (c === "'" || c === '"') {
      const end = input.indexOf(c, pos + 1);
      if (end < 0) fail('unterminated string constant');
      const value = input.slice(pos + 1, end);
      pos = end + 1;
      return { kind: 'str', value };
    }
    if (c !== undefined && /[-\d.]/.test(c)) {
      const start = pos;
      const num = match(NUMBER);
      if (num === undefined) return fail('bad number');
      const value = Number(num);
      // `1e999` is Infinity, which prints as a type name: the normalised form would not parse again.
      if (!Number.isFinite(value)) {
        pos = start;
        return fail(`number out of range (${num})`);
      }
      return { kind: 'num', value };
    }
    const save = pos;
    const word = match(NAME);
    if (word === 'true' || word === 'false') {
      skipSpace();
      if (input[pos] !== '<') return { kind: 'bool', value: word === 'true' };
    }
    pos = save;
    return parseType();
  };

  if (input.length > 4096) throw new TypeStringError(input.slice(0, 64) + '…', 'longer than 4096 characters');
  const node = parseType();
  skipSpace();
  if (pos !== input.length) fail('unexpected trailing characters');
  return node;
}

/** Print a parsed type in the normalised form: `Name<a, b>`, strings in single quotes. */
export function printType(node: TypeArg): string {
  switch (node.kind) {
    case 'str':
      return `'${node.value}'`;
    case 'num':
      return String(node.value);
    case 'bool':
      return node.value ? 'true' : 'false';
    case 'type':
      return node.args.length === 0 ? node.name : `${node.name}<${node.args.map(printType).join(', ')}>`;
  }
}

export function normaliseTypeString(input: string): string {
  return printType(parseTypeString(input));
}

/**
 * Whether `actual` may be given where `allowed` is expected. Structural: same name, and either the
 * allowed type leaves its arguments open (a bare `Domain` accepts any `Domain<…>`) or every argument
 * matches (types recursively, constants by value). `int` is accepted where `float` is allowed.
 */
export function isSubtype(actual: TypeArg, allowed: TypeArg): boolean {
  if (allowed.kind !== 'type' || actual.kind !== 'type') {
    return actual.kind === allowed.kind && (actual as { value: unknown }).value === (allowed as { value: unknown }).value;
  }
  if (actual.name !== allowed.name) return actual.name === 'int' && allowed.name === 'float';
  if (allowed.args.length === 0) return true;
  if (actual.args.length !== allowed.args.length) return false;
  return actual.args.every((arg, i) => isSubtype(arg, allowed.args[i]!));
}

/** The simple types whose values the server checks at create-job (docs/COMPATIBILITY.md). */
export function checkSimpleValue(type: TypeNode, value: unknown): string | undefined {
  switch (type.name) {
    case 'str':
      return typeof value === 'string' ? undefined : 'expected a string';
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) return 'expected an integer';
      // 1e300 is an integer to JavaScript; past 2^53 a JSON number no longer holds every digit.
      return Number.isSafeInteger(value) ? undefined : 'expected an integer of at most 2^53 - 1 in size (a larger one loses digits)';
    case 'float':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : 'expected a number';
    case 'bool':
      return typeof value === 'boolean' ? undefined : 'expected true or false';
    case 'JSON':
      return undefined;
    case 'Array': {
      if (!Array.isArray(value)) return 'expected an array';
      const inner = type.args[0];
      if (inner?.kind !== 'type') return undefined;
      for (const [i, item] of value.entries()) {
        const problem = checkSimpleValue(inner, item);
        if (problem) return `element ${i}: ${problem}`;
      }
      return undefined;
    }
    case 'JobOutput':
    case 'PK':
      return typeof value === 'number' && Number.isInteger(value) && value > 0 ? undefined : 'expected a primary key (a positive integer)';
    default:
      return undefined;
  }
}
