/**
 * What the shell scanner (`scan.ts`) finds in a script: where each placeholder sits (its quoting, its
 * line), the words and pipelines of simple commands, and here-documents.
 */

/** Where a placeholder sits, as the shell sees it. */
export type Quoting =
  /** Part of an unquoted word: expanded, then split and globbed. */
  | 'unquoted'
  /** Inside `"…"`: expanded, never split. */
  | 'double'
  /** Inside `'…'`: text the shell passes on unread. */
  | 'single'
  /** Inside `$'…'`: text, as in single quotes. */
  | 'ansi-c'
  /** In a here-document with an unquoted delimiter: expanded, never split. */
  | 'heredoc'
  /** In a here-document with a quoted delimiter (`<<'EOF'`): text passed on unread. */
  | 'quoted-heredoc'
  /** In a comment: never read. */
  | 'comment'
  /** In `$(( ))` or `(( ))`: the expanded text is evaluated as an arithmetic expression. */
  | 'arithmetic';

/** One placeholder in the script. */
export interface Site {
  /** The `${name}` span. */
  start: number;
  end: number;
  name: string;
  quoting: Quoting;
  /** 1-based line of `start`. */
  line: number;
}

/** One word of a simple command. */
export interface Word {
  /** The word after quote removal when nothing in it is expanded (`sh`, `"-c"`); else undefined. */
  literal: string | undefined;
  /** Whether any part of the word was quoted or escaped (here-document delimiters care). */
  quoted: boolean;
  /** `NAME=…`, an assignment when it comes before the command name. */
  assignment: boolean;
  /** Placeholders anywhere inside the word, those in nested substitutions included. */
  sites: Site[];
  /** The word is the target of a redirection: `<<<` (a here-string, fed to standard input) or another. */
  redirect?: 'here-string' | 'file';
}

/** A simple command (or the patterns of one `case` item, `kind: 'pattern'`). */
export interface SimpleCommand {
  kind: 'command' | 'pattern';
  words: Word[];
  /** Here-documents fed to this command's standard input, with the placeholders in their bodies. */
  heredocs: { quoted: boolean; sites: Site[] }[];
  /** The pipeline the command belongs to, and its stage in it (0 = first). */
  pipeline: number;
  stage: number;
}

export interface ScannedScript {
  sites: Site[];
  commands: SimpleCommand[];
}

/** The script cannot be followed (an unterminated quote or substitution). */
export class ShellScanError extends Error {
  readonly line: number;

  constructor(message: string, line: number) {
    super(`${message} (line ${line})`);
    this.name = 'ShellScanError';
    this.line = line;
  }
}
