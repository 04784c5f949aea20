/**
 * The checks on a template's `body` that both sides make: the server when a template is imported (so
 * that an unsafe template never reaches a node), the agent before it runs a job (the reference backend
 * imports templates unchecked). A `ufdl_agent.Shell` script must place each `${name}` where a value
 * stays data; a `ufdl_agent.Command` argv must not hand one to a program as code.
 */
import { plainPlaceholderAt, resolveFlags } from '../placeholders.js';
import { commandCode } from './code-words.js';
import { firstRefusal, placePlaceholders, ShellScanError, type Placement, type Refusal } from './placements.js';
import type { Site, Word } from './scan.js';

/** `${name} on line 3 is inside single quotes …; read "$UFDL_PARAM_name" …`. */
export function refusalMessage(refusal: Refusal, variable: string): string {
  const { site, reason } = refusal;
  return `\${${site.name}} on line ${site.line} ${reason}. Read the value from the environment instead: "$${variable}" in the script, or the variable ${variable} in the program that needs it`;
}

/** What a template declares, as far as its script is concerned. */
export interface ScriptDeclarations {
  /** Parameter names and their declared type strings. */
  parameters: Readonly<Record<string, { types: readonly string[] }>>;
  /** Input names. */
  inputs: readonly string[];
  /** The environment variable that carries a value (see `value-env.ts`). */
  variable: (name: string) => string;
}

/**
 * Why the template's script cannot run safely whatever a job's values are, or `undefined`. Flags are
 * tried both ways, since a job decides them.
 */
export function shellScriptProblem(script: string, declared: ScriptDeclarations): string | undefined {
  const known = (name: string): boolean => Object.hasOwn(declared.parameters, name) || declared.inputs.includes(name);
  for (const flagsOn of [true, false]) {
    let placements: Placement[];
    try {
      placements = placePlaceholders(resolveFlags(script, () => flagsOn), known);
    } catch (err) {
      if (err instanceof ShellScanError) return `the script cannot be read: ${err.message}`;
      throw err;
    }
    const refusal = firstRefusal(placements);
    if (refusal) return refusalMessage(refusal, declared.variable(refusal.site.name));
    for (const placement of placements) {
      if (placement.verdict !== 'integer') continue;
      const { name, line } = placement.site;
      const parameter = Object.hasOwn(declared.parameters, name) ? declared.parameters[name] : undefined;
      if (!parameter || !Array.isArray(parameter.types) || !parameter.types.every((type) => type === 'int')) {
        return `\${${name}} on line ${line} is in an arithmetic expression, which evaluates the value, so it must be a parameter of type int only (it is ${
          parameter ? `of type ${Array.isArray(parameter.types) ? parameter.types.join(' or ') : 'unknown'}` : 'an input'
        })`;
      }
    }
  }
  return undefined;
}

/** A value the shell may evaluate in arithmetic: a plain decimal integer. */
export function isArithmeticSafe(value: string): boolean {
  return /^[+-]?[0-9]{1,18}$/.test(value);
}

/**
 * Why an argv (`ufdl_agent.Command`'s `body`, flags resolved) would hand a value to a program as code
 * (`["sh", "-c", "echo ${name}"]`) or let a value choose the program, or `undefined`. There is no
 * shell, so everything else in an argv is data.
 */
export function argvProblem(argv: readonly string[], isPlaceholder: (name: string) => boolean, variable: (name: string) => string): string | undefined {
  const words: Word[] = argv.map((entry) => {
    const sites: Site[] = [];
    for (let j = entry.indexOf('${'); j >= 0; j = entry.indexOf('${', j + 2)) {
      const found = plainPlaceholderAt(entry, j);
      if (found && isPlaceholder(found.name)) sites.push({ start: j, end: j + found.length, name: found.name, quoting: 'double', line: 1 });
    }
    return { literal: sites.length > 0 ? undefined : entry, quoted: false, assignment: false, sites };
  });
  const use = commandCode(words);
  for (const [index, word] of words.entries()) {
    const site = word.sites[0];
    if (site === undefined) continue;
    if (use.program === index) return `\${${site.name}} in argv[${index}] names the program to run; a value may only be data`;
    if (use.code.has(index)) {
      return `\${${site.name}} in argv[${index}] is part of the code that '${use.name}' runs. Pass the value as an argument of its own, or read the environment variable ${variable(site.name)} in the program`;
    }
  }
  return undefined;
}
