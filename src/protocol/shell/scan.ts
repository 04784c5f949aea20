/**
 * A scanner for POSIX `sh` scripts that finds where a template's `${name}` placeholders sit: in which
 * quoting, in which word of which simple command, in which here-document. It is not a full parser; it
 * knows what decides whether a value can reach a script safely (quotes, comments, here-documents,
 * command and arithmetic substitution, the words and pipelines of simple commands, `case` patterns)
 * and refuses what it cannot follow (an unterminated quote), so that the caller fails closed.
 *
 * A placeholder is only a `${name}` whose name the caller knows (a parameter or an input); every other
 * `$…` is the shell's own business.
 */
import { plainPlaceholderAt } from '../placeholders.js';
import { ScanCursor, type Collector } from './cursor.js';
import type { ScannedScript, SimpleCommand, Word } from './syntax.js';

export { ShellScanError, type Quoting, type ScannedScript, type SimpleCommand, type Site, type Word } from './syntax.js';

/** Scan `script`; `isPlaceholder(name)` says which `${name}` are placeholders. */
export function scanScript(script: string, isPlaceholder: (name: string) => boolean): ScannedScript {
  const scanner = new Scanner(script, isPlaceholder);
  scanner.list(null, 0);
  return { sites: scanner.sites, commands: scanner.commands };
}

/** Words that open or close a compound command; at a command's start they are not its name. */
const RESERVED = new Set(['if', 'then', 'else', 'elif', 'fi', 'do', 'done', 'while', 'until', '{', '}', '!', 'esac']);

/** A here-document whose body starts after the current line. */
interface PendingHeredoc {
  delimiter: string;
  quoted: boolean;
  stripTabs: boolean;
  command: SimpleCommand;
}

interface WordBuilder extends Collector {
  text: string;
  expanded: boolean;
  quoted: boolean;
  assignment: boolean;
}

class Scanner extends ScanCursor {
  readonly commands: SimpleCommand[] = [];
  readonly #pending: PendingHeredoc[] = [];
  #pipelines = 0;

  #newCommand(pipeline: number, stage: number, kind: SimpleCommand['kind'] = 'command'): SimpleCommand {
    const command: SimpleCommand = { kind, words: [], heredocs: [], pipeline, stage };
    this.commands.push(command);
    return command;
  }

  /**
   * A list of commands up to `end` (the `)` of `$(`, the closing backquote) or the limit. `openedAt`
   * is where the construct began, for the error message.
   */
  list(end: ')' | '`' | null, openedAt: number): void {
    const src = this.src;
    /** `case` constructs open at this level, innermost last. */
    const cases: ('subject' | 'patterns' | 'body')[] = [];
    const caseState = (): 'subject' | 'patterns' | 'body' | undefined => cases[cases.length - 1];
    let command = this.#newCommand(this.#pipelines++, 0);
    let word: WordBuilder | undefined;
    let redirect: Word['redirect'] | 'heredoc' | undefined;
    let stripTabs = false;
    let parens = 0;

    const endCommand = (how: 'list' | 'pipe'): void => {
      endWord();
      const pipeline = how === 'pipe' ? command.pipeline : this.#pipelines++;
      const stage = how === 'pipe' ? command.stage + 1 : 0;
      command = this.#newCommand(pipeline, stage, caseState() === 'patterns' ? 'pattern' : 'command');
    };
    const endWord = (): void => {
      if (!word) return;
      this.enclosing.pop();
      const built: Word = { literal: word.expanded ? undefined : word.text, quoted: word.quoted, assignment: word.assignment, sites: word.sites };
      word = undefined;
      if (redirect === 'heredoc') {
        this.#pending.push({ delimiter: built.literal ?? '', quoted: built.quoted, stripTabs, command });
        redirect = undefined;
        return;
      }
      if (redirect) {
        built.redirect = redirect;
        redirect = undefined;
        command.words.push(built);
        return;
      }
      const reserved = built.literal !== undefined && !built.quoted ? built.literal : undefined;
      const atStart = command.words.every((w) => w.redirect !== undefined);
      if (atStart && reserved === 'esac' && cases.length > 0) {
        cases.pop();
        command.kind = 'command';
        return;
      }
      if (command.kind === 'command' && atStart && reserved !== undefined && RESERVED.has(reserved)) {
        return; // `then echo …`: the command starts after the reserved word
      }
      command.words.push(built);
      if (command.kind === 'command' && command.words.length === 1 && reserved === 'case') cases.push('subject');
      if (caseState() === 'subject' && command.words.length === 3 && reserved === 'in') {
        cases[cases.length - 1] = 'patterns';
        endCommand('list');
      }
    };
    const startWord = (): WordBuilder => {
      if (!word) {
        word = { text: '', expanded: false, quoted: false, assignment: false, sites: [] };
        this.enclosing.push(word);
      }
      return word;
    };

    for (;;) {
      if (this.i >= this.limit) {
        if (end !== null) this.fail(end === ')' ? "an unterminated '$('" : 'an unterminated backquote', openedAt);
        endCommand('list');
        return;
      }
      const c = src[this.i]!;
      const next = src[this.i + 1];
      if (end === '`' && c === '`') {
        endCommand('list');
        this.i++;
        return;
      }
      if (end === ')' && c === ')' && parens === 0 && caseState() !== 'patterns') {
        endCommand('list');
        this.i++;
        return;
      }
      if (c === ' ' || c === '\t') {
        endWord();
        this.i++;
      } else if (c === '\n') {
        endCommand('list');
        this.i++;
        this.#heredocBodies();
      } else if (c === '#' && !word) {
        const eol = src.indexOf('\n', this.i);
        const stop = eol < 0 || eol > this.limit ? this.limit : eol;
        this.literalSites(this.i, stop, 'comment');
        this.i = stop;
      } else if (c === ';' || c === '&') {
        // `;;`, `;&` and `;;&` end a case item; `&&`, `;` and `&` end a command.
        const caseItemEnd = c === ';' && (next === ';' || next === '&') && caseState() === 'body';
        if (caseItemEnd) cases[cases.length - 1] = 'patterns';
        endCommand('list');
        this.i += next === c || caseItemEnd ? 2 : 1;
        if (caseItemEnd && src[this.i] === '&') this.i++;
      } else if (c === '|') {
        if (command.kind === 'pattern') {
          endWord();
          this.i++;
        } else if (next === '|') {
          endCommand('list');
          this.i += 2;
        } else {
          endCommand('pipe');
          this.i += next === '&' ? 2 : 1;
        }
      } else if (c === '(') {
        if (command.kind === 'pattern') {
          endWord();
          this.i++;
        } else if (!word && command.words.length === 0 && next === '(') {
          // `(( … ))`: an arithmetic command, not a word.
          const sink: WordBuilder = { text: '', expanded: false, quoted: false, assignment: false, sites: [] };
          this.enclosing.push(sink);
          this.i += 2;
          this.#arithmetic(this.i - 2, '))', sink);
          this.enclosing.pop();
        } else {
          parens++;
          endCommand('list');
          this.i++;
        }
      } else if (c === ')') {
        if (command.kind === 'pattern') {
          cases[cases.length - 1] = 'body';
        } else {
          parens = Math.max(0, parens - 1);
        }
        endCommand('list');
        this.i++;
      } else if (c === '<' || c === '>') {
        if (word && /^\d+$/.test(word.text) && !word.expanded && !word.quoted) {
          // `2>file`: the digits name a descriptor; they are not a word.
          this.enclosing.pop();
          word = undefined;
        }
        endWord();
        const kind = this.#redirectionOperator();
        redirect = kind === 'heredoc' || kind === 'heredoc-strip' ? 'heredoc' : kind;
        stripTabs = kind === 'heredoc-strip';
      } else {
        this.#wordPart(startWord(), 'unquoted');
      }
    }
  }

  /** Read a redirection operator at the position; say what its target word is. */
  #redirectionOperator(): 'heredoc' | 'heredoc-strip' | 'here-string' | 'file' {
    const src = this.src;
    const op = /^(<<<|<<-|<<|<>|<&|>&|>>|>\||&>|<|>)/.exec(src.slice(this.i, this.i + 3))![0];
    this.i += op.length;
    if (op === '<<') return 'heredoc';
    if (op === '<<-') return 'heredoc-strip';
    if (op === '<<<') return 'here-string';
    return 'file';
  }

  /** After a newline: the bodies of the here-documents opened on the line just ended. */
  #heredocBodies(): void {
    const src = this.src;
    while (this.#pending.length > 0) {
      const heredoc = this.#pending.shift()!;
      const bodyStart = this.i;
      let bodyEnd = this.limit;
      let next = this.limit;
      for (let lineStart = bodyStart; lineStart < this.limit; ) {
        const eol = src.indexOf('\n', lineStart);
        const lineEnd = eol < 0 || eol > this.limit ? this.limit : eol;
        let line = src.slice(lineStart, lineEnd);
        if (heredoc.stripTabs) line = line.replace(/^\t+/, '');
        if (line === heredoc.delimiter) {
          bodyEnd = lineStart;
          next = Math.min(lineEnd + 1, this.limit);
          break;
        }
        lineStart = lineEnd + 1;
      }
      const collector: Collector = { sites: [] };
      this.enclosing.push(collector);
      if (heredoc.quoted) {
        this.literalSites(bodyStart, bodyEnd, 'quoted-heredoc');
      } else {
        const limit = this.limit;
        this.limit = bodyEnd;
        const sink: WordBuilder = { text: '', expanded: false, quoted: false, assignment: false, sites: [] };
        while (this.i < bodyEnd) {
          const c = src[this.i]!;
          if (c === '\\') this.i += 2;
          else if (c === '$') this.#dollar(sink, 'heredoc');
          else if (c === '`') this.#backquote(sink);
          else this.i++;
        }
        this.limit = limit;
      }
      this.enclosing.pop();
      heredoc.command.heredocs.push({ quoted: heredoc.quoted, sites: collector.sites });
      this.i = next;
    }
  }

  /** One part of an unquoted word at the position: a quoted string, an expansion, or one character. */
  #wordPart(word: WordBuilder, quoting: 'unquoted'): void {
    const src = this.src;
    const c = src[this.i]!;
    if (c === "'") {
      const close = src.indexOf("'", this.i + 1);
      if (close < 0 || close >= this.limit) this.fail('an unterminated single quote', this.i);
      this.literalSites(this.i + 1, close, 'single');
      word.text += src.slice(this.i + 1, close);
      word.quoted = true;
      this.i = close + 1;
    } else if (c === '"') {
      word.quoted = true;
      this.#doubleQuoted(word);
    } else if (c === '\\') {
      word.quoted = true;
      if (src[this.i + 1] !== '\n') word.text += src[this.i + 1] ?? '';
      this.i += 2;
    } else if (c === '$') {
      this.#dollar(word, quoting);
    } else if (c === '`') {
      this.#backquote(word);
    } else {
      if (c === '=' && !word.quoted && !word.expanded && /^[A-Za-z_][A-Za-z0-9_]*$/.test(word.text)) word.assignment = true;
      word.text += c;
      this.i++;
    }
  }

  /** `"…"` starting at the position. */
  #doubleQuoted(word: WordBuilder): void {
    const src = this.src;
    const open = this.i;
    this.i++;
    for (;;) {
      if (this.i >= this.limit) this.fail('an unterminated double quote', open);
      const c = src[this.i]!;
      if (c === '"') {
        this.i++;
        return;
      }
      if (c === '\\') {
        const escaped = src[this.i + 1] ?? '';
        word.text += '$`"\\\n'.includes(escaped) ? (escaped === '\n' ? '' : escaped) : `\\${escaped}`;
        this.i += 2;
      } else if (c === '$') {
        this.#dollar(word, 'double');
      } else if (c === '`') {
        this.#backquote(word);
      } else {
        word.text += c;
        this.i++;
      }
    }
  }

  /** A `$…` at the position, in the given quoting. */
  #dollar(word: WordBuilder, quoting: 'unquoted' | 'double' | 'heredoc' | 'arithmetic'): void {
    const src = this.src;
    const start = this.i;
    const next = src[start + 1];
    if (next === '(' && src[start + 2] === '(') {
      word.expanded = true;
      this.i += 3;
      this.#arithmetic(start, '))', word);
    } else if (next === '(') {
      word.expanded = true;
      this.i += 2;
      this.list(')', start);
    } else if (next === '{') {
      word.expanded = true;
      const found = plainPlaceholderAt(src, start);
      if (found && start + found.length <= this.limit && this.isPlaceholder(found.name)) {
        this.site(start, found.name, found.length, quoting);
        this.i += found.length;
      } else {
        this.i += 2;
        this.#parameterExpansion(word, quoting, start);
      }
    } else if (next === "'" && quoting === 'unquoted') {
      // `$'…'` (bash, ksh, zsh; dash reads `$` and a single-quoted string): text either way.
      let j = start + 2;
      while (j < this.limit && src[j] !== "'") j += src[j] === '\\' ? 2 : 1;
      if (j >= this.limit) this.fail("an unterminated $'…'", start);
      this.literalSites(start + 2, j, 'ansi-c');
      word.quoted = true;
      word.expanded = true;
      this.i = j + 1;
    } else if (next !== undefined && /[A-Za-z0-9_@*#?$!-]/.test(next)) {
      word.expanded = true;
      this.i += 2;
      if (/[A-Za-z_]/.test(next)) while (this.i < this.limit && /[A-Za-z0-9_]/.test(src[this.i]!)) this.i++;
    } else {
      word.text += '$';
      this.i++;
    }
  }

  /** The rest of a shell `${…}` (after `${`), up to its `}`; placeholders may sit in its word. */
  #parameterExpansion(word: WordBuilder, quoting: 'unquoted' | 'double' | 'heredoc' | 'arithmetic', open: number): void {
    const src = this.src;
    for (;;) {
      if (this.i >= this.limit) this.fail("an unterminated '${'", open);
      const c = src[this.i]!;
      if (c === '}') {
        this.i++;
        return;
      }
      if (c === '\\') this.i += 2;
      else if (c === '$') this.#dollar(word, quoting);
      else if (c === '`') this.#backquote(word);
      else if (c === '"') this.#doubleQuoted(word);
      else if (c === "'" && quoting === 'unquoted') this.#wordPart(word, 'unquoted');
      else this.i++;
    }
  }

  /** `` `…` `` at the position: a command substitution. */
  #backquote(word: WordBuilder): void {
    word.expanded = true;
    const open = this.i;
    this.i++;
    this.list('`', open);
  }

  /** An arithmetic expression up to `close` (the position is after the opening `((`). */
  #arithmetic(open: number, close: '))', word: WordBuilder): void {
    const src = this.src;
    word.expanded = true;
    let depth = 0;
    for (;;) {
      if (this.i >= this.limit) this.fail("an unterminated '(('", open);
      const c = src[this.i]!;
      if (c === ')' && depth === 0 && src.startsWith(close, this.i)) {
        this.i += close.length;
        return;
      }
      if (c === '(') depth++;
      else if (c === ')') depth--;
      if (c === '$') this.#dollar(word, 'arithmetic');
      else if (c === '`') this.#backquote(word);
      else if (c === '\\') this.i += 2;
      else this.i++;
    }
  }
}
