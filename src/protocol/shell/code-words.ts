/**
 * Which words of a simple command another program reads as code. The shell never parses the value
 * of a variable it expands, but the program it passes the value to may: `eval`, the string after
 * `sh -c`, `python3 -c` or `perl -e`, an awk program, a sed script, a script an interpreter reads
 * from its standard input. A value placed there runs as code whatever the shell's quoting, so those
 * placements are refused. The table covers the programs templates commonly call; it is a safety net,
 * not a proof: a program not listed here that runs its argument is the template author's to avoid.
 */
import type { Word } from './scan.js';

/** How one simple command uses its words. */
export interface CommandCode {
  /** The word that names the program (after wrappers such as `exec` or `env`), if any. */
  program: number | undefined;
  /** The program's name, when that word is literal (`python3` for `/usr/bin/python3`). */
  name: string | undefined;
  /** Words the program reads as code, or as the name of code to run (a script file, a module). */
  code: Set<number>;
  /** Whether the program reads code from its standard input (`sh`, `python3` with no script). */
  stdinIsCode: boolean;
  /** Whether the words are arithmetic expressions (`let`, `[[`): a value there must be an integer. */
  arithmetic: boolean;
}

interface Interpreter {
  /** Options whose argument is code (`-c`, `-e`, `--eval`). */
  codeOptions?: readonly string[];
  /** A one-letter flag that, anywhere in a cluster (`-ec`), makes the first operand code (shells' `c`). */
  clusterCodeFlag?: string;
  /** A one-letter flag that makes standard input the program and every operand data (shells' `s`). */
  clusterStdinFlag?: string;
  /** Options whose argument names code to run (`python -m module`). */
  moduleOptions?: readonly string[];
  /** Options after which the program comes from a file: the first operand is then data (`awk -f`). */
  fileOptions?: readonly string[];
  /** Options that take an argument that is not code. */
  argumentOptions?: readonly string[];
  /** What the first operand is when no code option was given. */
  firstOperand: 'code' | 'script' | 'data';
  /** Whether the program reads its program from standard input when it got none. */
  stdin: boolean;
}

const SHELL: Interpreter = {
  clusterCodeFlag: 'c',
  clusterStdinFlag: 's',
  argumentOptions: ['-o', '+o', '-O', '+O', '--rcfile', '--init-file'],
  firstOperand: 'script',
  stdin: true,
};

const INTERPRETERS: Readonly<Record<string, Interpreter>> = {
  sh: SHELL,
  bash: SHELL,
  dash: SHELL,
  ash: SHELL,
  ksh: SHELL,
  mksh: SHELL,
  zsh: SHELL,
  su: { codeOptions: ['-c', '--command'], argumentOptions: ['-s', '--shell', '-g', '--group', '-G'], firstOperand: 'data', stdin: false },
  python: { codeOptions: ['-c'], moduleOptions: ['-m'], argumentOptions: ['-W', '-X', '-Q'], firstOperand: 'script', stdin: true },
  pypy: { codeOptions: ['-c'], moduleOptions: ['-m'], argumentOptions: ['-W', '-X'], firstOperand: 'script', stdin: true },
  perl: { codeOptions: ['-e', '-E'], moduleOptions: ['-M', '-m'], argumentOptions: ['-I', '-x', '-C'], firstOperand: 'script', stdin: true },
  ruby: { codeOptions: ['-e'], moduleOptions: ['-r'], argumentOptions: ['-I', '-C', '-E'], firstOperand: 'script', stdin: true },
  node: {
    codeOptions: ['-e', '--eval', '-p', '--print'],
    moduleOptions: ['-r', '--require', '--import', '--loader'],
    firstOperand: 'script',
    stdin: true,
  },
  php: { codeOptions: ['-r', '-B', '-R', '-E'], fileOptions: ['-f'], argumentOptions: ['-c', '-d', '-z'], firstOperand: 'script', stdin: true },
  Rscript: { codeOptions: ['-e'], firstOperand: 'script', stdin: false },
  awk: {
    codeOptions: ['-e', '--source'],
    fileOptions: ['-f', '--file'],
    argumentOptions: ['-F', '-v', '--assign', '--field-separator'],
    firstOperand: 'code',
    stdin: false,
  },
  sed: {
    codeOptions: ['-e', '--expression'],
    fileOptions: ['-f', '--file'],
    argumentOptions: ['-l', '--line-length'],
    firstOperand: 'code',
    stdin: false,
  },
};

/** Spellings of the same interpreter: `python3.12`, `gawk`, `nodejs`, `busybox`'s applets. */
function interpreterOf(name: string): Interpreter | undefined {
  if (Object.hasOwn(INTERPRETERS, name)) return INTERPRETERS[name];
  if (/^python[0-9.]*$/.test(name)) return INTERPRETERS['python'];
  if (/^pypy[0-9.]*$/.test(name)) return INTERPRETERS['pypy'];
  if (/^perl[0-9.]*$/.test(name)) return INTERPRETERS['perl'];
  if (/^ruby[0-9.]*$/.test(name)) return INTERPRETERS['ruby'];
  if (name === 'nodejs') return INTERPRETERS['node'];
  if (/^php[0-9.]*$/.test(name)) return INTERPRETERS['php'];
  if (name === 'gawk' || name === 'mawk' || name === 'nawk') return INTERPRETERS['awk'];
  if (name === 'gsed') return INTERPRETERS['sed'];
  return undefined;
}

/**
 * Programs that run the rest of their words as a command: skip their options (and the operands they
 * take) to find the program that really runs.
 */
const WRAPPERS: Readonly<Record<string, { argumentOptions: readonly string[]; operands: number; assignments?: boolean }>> = {
  exec: { argumentOptions: ['-a'], operands: 0 },
  command: { argumentOptions: [], operands: 0 },
  nohup: { argumentOptions: [], operands: 0 },
  time: { argumentOptions: ['-f', '-o'], operands: 0 },
  env: { argumentOptions: ['-u', '-C', '-S'], operands: 0, assignments: true },
  nice: { argumentOptions: ['-n'], operands: 0 },
  ionice: { argumentOptions: ['-c', '-n', '-p'], operands: 0 },
  timeout: { argumentOptions: ['-s', '-k', '--signal', '--kill-after'], operands: 1 },
  stdbuf: { argumentOptions: ['-i', '-o', '-e'], operands: 0 },
  sudo: { argumentOptions: ['-u', '-g', '-C', '-D', '-h', '-p', '-r', '-t', '-U'], operands: 0, assignments: true },
  busybox: { argumentOptions: [], operands: 0 },
};

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** How the command made of `words` uses them (see {@link CommandCode}). */
export function commandCode(words: readonly Word[]): CommandCode {
  const result: CommandCode = { program: undefined, name: undefined, code: new Set(), stdinIsCode: false, arithmetic: false };
  // Arguments in order: no redirection targets, no leading `NAME=value`.
  const args: number[] = [];
  for (const [index, word] of words.entries()) {
    if (word.redirect !== undefined) continue;
    if (args.length === 0 && word.assignment) continue;
    args.push(index);
  }
  let at = 0;
  for (;;) {
    if (at >= args.length) return result;
    result.program = args[at];
    const literal = words[args[at]!]!.literal;
    if (literal === undefined) return result; // the program is chosen by an expansion
    const name = basename(literal);
    result.name = name;
    const wrapper = Object.hasOwn(WRAPPERS, name) ? WRAPPERS[name] : undefined;
    if (!wrapper) break;
    at = skipOptions(words, args, at + 1, wrapper.argumentOptions, wrapper.assignments ?? false) + wrapper.operands;
  }
  const name = result.name!;
  const rest = args.slice(at + 1);
  if (name === 'eval') {
    for (const index of rest) result.code.add(index);
  } else if (name === '.' || name === 'source' || name === 'trap') {
    if (rest[0] !== undefined) result.code.add(rest[0]);
  } else if (name === 'let' || name === '[[') {
    result.arithmetic = true;
  } else {
    const interpreter = interpreterOf(name);
    if (interpreter) readInterpreterWords(words, rest, interpreter, result);
  }
  return result;
}

/** The index into `args` of the first word after the options starting at `from`. */
function skipOptions(words: readonly Word[], args: readonly number[], from: number, argumentOptions: readonly string[], assignments: boolean): number {
  let at = from;
  while (at < args.length) {
    const word = words[args[at]!]!;
    const literal = word.literal;
    if (literal === '--') return at + 1;
    if (assignments && word.assignment) {
      at++;
    } else if (literal !== undefined && literal.startsWith('-') && literal !== '-') {
      at += argumentOptions.includes(literal) ? 2 : 1;
    } else {
      return at;
    }
  }
  return at;
}

/** Mark the code words of an interpreter's arguments (`rest`, after the program's own word). */
function readInterpreterWords(words: readonly Word[], rest: readonly number[], interpreter: Interpreter, result: CommandCode): void {
  const { codeOptions = [], moduleOptions = [], fileOptions = [], argumentOptions = [] } = interpreter;
  let programGiven = false;
  let clusterCode = false;
  let stdinProgram = false;
  let at = 0;
  for (; at < rest.length; at++) {
    const index = rest[at]!;
    const word = words[index]!;
    const literal = word.literal;
    if (literal === '--') {
      at++;
      break;
    }
    if (literal === undefined || !/^[-+]./.test(literal)) break; // the first operand
    const withArgument = (options: readonly string[]): 'next' | 'attached' | undefined => {
      if (options.includes(literal)) return 'next';
      if (options.some((o) => (o.startsWith('--') ? literal.startsWith(`${o}=`) : o.length === 2 && literal.startsWith(o) && literal.length > 2))) {
        return 'attached';
      }
      return undefined;
    };
    const code = withArgument([...codeOptions, ...moduleOptions]);
    if (code) {
      programGiven = true;
      const target = code === 'next' ? rest[++at] : index;
      if (target !== undefined) result.code.add(target);
      continue;
    }
    if (withArgument(fileOptions)) {
      programGiven = true;
      if (withArgument(fileOptions) === 'next') at++;
      continue;
    }
    if (withArgument(argumentOptions) === 'next') {
      at++;
      continue;
    }
    if (!literal.startsWith('--')) {
      if (interpreter.clusterCodeFlag && literal.slice(1).includes(interpreter.clusterCodeFlag)) clusterCode = true;
      if (interpreter.clusterStdinFlag && literal.slice(1).includes(interpreter.clusterStdinFlag)) stdinProgram = true;
    }
  }
  const operands = rest.slice(at);
  if (clusterCode) {
    if (operands[0] !== undefined) result.code.add(operands[0]);
    return;
  }
  if (stdinProgram) {
    result.stdinIsCode = true;
    return;
  }
  if (programGiven) return;
  const first = operands[0];
  if (first === undefined || words[first]!.literal === '-') {
    result.stdinIsCode = interpreter.stdin;
    return;
  }
  if (interpreter.firstOperand !== 'data') result.code.add(first);
}
