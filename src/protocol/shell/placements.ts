/**
 * How each `${name}` of a `ufdl_agent.Shell` script is passed to the script, or why it cannot be.
 *
 * Values reach a script through its environment, never through its text: `${name}` is rewritten to a
 * reference to the environment variable that holds the value, which the shell substitutes as data and
 * never parses again. Where the shell itself would not even expand it (single quotes, a quoted
 * here-document), or where the program that gets it reads it as code (`eval`, `sh -c`, `python3 -c`,
 * an awk program, a script fed to an interpreter's standard input), no rewriting can make it safe: the
 * placement is refused. In arithmetic the expanded text is evaluated, so there the value must be an
 * integer.
 */
import { commandCode, type CommandCode } from './code-words.js';
import { scanScript, type ScannedScript, type Site } from './scan.js';

export { ShellScanError, type Quoting, type Site } from './scan.js';

/** What becomes of one placeholder. */
export type Placement =
  /** Rewritten to `"${VAR}"` (in an unquoted word) or `${VAR}` (already inside quotes, a here-document, a comment). */
  | { site: Site; verdict: 'expand'; quoted: boolean }
  /** Rewritten to `${VAR}`; the value must be an integer, since the shell evaluates it. */
  | { site: Site; verdict: 'integer' }
  /** Cannot be made safe; `reason` completes the sentence "`${name}` on line N …". */
  | { site: Site; verdict: 'refused'; reason: string };

export type Refusal = Extract<Placement, { verdict: 'refused' }>;

/**
 * Every placeholder of `script` with its verdict, in script order.
 * @throws ShellScanError when the script cannot be followed (an unterminated quote).
 */
export function placePlaceholders(script: string, isPlaceholder: (name: string) => boolean): Placement[] {
  const scanned = scanScript(script, isPlaceholder);
  const placements = new Map<Site, Placement>();
  for (const site of scanned.sites) placements.set(site, byQuoting(site));
  const refuse = (site: Site, reason: string): void => {
    placements.set(site, { site, verdict: 'refused', reason });
  };
  const needInteger = (site: Site): void => {
    if (placements.get(site)!.verdict === 'expand') placements.set(site, { site, verdict: 'integer' });
  };
  const uses = new Map(scanned.commands.filter((c) => c.kind === 'command').map((c) => [c, commandCode(c.words)] as const));
  for (const [command, use] of uses) {
    for (const [index, word] of command.words.entries()) {
      for (const site of word.sites) {
        if (use.program === index && word.literal === undefined) refuse(site, 'names the program to run; a value may only be data');
        else if (use.code.has(index)) refuse(site, `is part of the code that ${describe(use)} runs`);
        else if (word.redirect === 'here-string' && use.stdinIsCode) refuse(site, `is fed to ${describe(use)}, which reads it as its program`);
        else if (use.arithmetic) needInteger(site);
      }
    }
    if (use.stdinIsCode) {
      for (const heredoc of command.heredocs) {
        for (const site of heredoc.sites) refuse(site, `is in a here-document that ${describe(use)} reads as its program`);
      }
    }
  }
  for (const [command, reader] of pipelineReaders(scanned, uses)) {
    for (const site of sitesOf(command)) refuse(site, `is written into a pipe that ${describe(reader)} reads as its program`);
  }
  // Later rules only make a verdict stricter; a refusal from the quoting (single quotes) stays.
  for (const site of scanned.sites) {
    const base = byQuoting(site);
    if (base.verdict === 'refused') placements.set(site, base);
  }
  return [...placements.values()].sort((a, b) => a.site.start - b.site.start);
}

/** The first refused placement, if any. */
export function firstRefusal(placements: readonly Placement[]): Refusal | undefined {
  return placements.find((p): p is Refusal => p.verdict === 'refused');
}

/**
 * The script with every placeholder replaced by a reference to `variable(name)`. Refused placements
 * must have been dealt with first.
 */
export function rewriteScript(script: string, placements: readonly Placement[], variable: (name: string) => string): string {
  let out = '';
  let at = 0;
  for (const placement of placements) {
    if (placement.verdict === 'refused') throw new TypeError(`rewriteScript: ${placement.site.name} is refused: ${placement.reason}`);
    const reference = `\${${variable(placement.site.name)}}`;
    out += script.slice(at, placement.site.start) + (placement.verdict === 'expand' && placement.quoted ? `"${reference}"` : reference);
    at = placement.site.end;
  }
  return out + script.slice(at);
}

function byQuoting(site: Site): Placement {
  switch (site.quoting) {
    case 'single':
      return {
        site,
        verdict: 'refused',
        reason: 'is inside single quotes, which the shell passes on unread: the program that gets the text (python -c, awk, sed, …) would read a value as code',
      };
    case 'ansi-c':
      return { site, verdict: 'refused', reason: "is inside $'…', which the shell passes on unread" };
    case 'quoted-heredoc':
      return { site, verdict: 'refused', reason: 'is in a here-document with a quoted delimiter, which the shell passes on unread' };
    case 'arithmetic':
      return { site, verdict: 'integer' };
    case 'unquoted':
      return { site, verdict: 'expand', quoted: true };
    default:
      return { site, verdict: 'expand', quoted: false };
  }
}

function describe(use: CommandCode): string {
  return `'${use.name ?? 'the command'}'`;
}

/** Commands whose output is piped into a later stage that reads its program from standard input. */
function pipelineReaders(scanned: ScannedScript, uses: ReadonlyMap<ScannedScript['commands'][number], CommandCode>) {
  const found: [ScannedScript['commands'][number], CommandCode][] = [];
  for (const [reader, use] of uses) {
    if (!use.stdinIsCode || reader.stage === 0) continue;
    for (const command of scanned.commands) {
      if (command.pipeline === reader.pipeline && command.stage < reader.stage) found.push([command, use]);
    }
  }
  return found;
}

function sitesOf(command: ScannedScript['commands'][number]): Site[] {
  return [...command.words.flatMap((w) => w.sites), ...command.heredocs.flatMap((h) => h.sites)];
}
