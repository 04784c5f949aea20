/**
 * The scanner's position in a script and what it has found so far: the placeholders (each recorded
 * with every word or here-document that encloses it), line numbers for messages, and the failure
 * that makes the caller refuse a script it cannot follow.
 */
import { plainPlaceholderAt } from '../placeholders.js';
import { ShellScanError, type Quoting, type Site } from './syntax.js';

/** What a word is being collected into: itself, and every word or here-document that encloses it. */
export interface Collector {
  sites: Site[];
}

export class ScanCursor {
  readonly sites: Site[] = [];
  protected readonly src: string;
  protected readonly isPlaceholder: (name: string) => boolean;
  /** The end of what may be read: the script, or the body of the here-document being scanned. */
  protected limit: number;
  protected i = 0;
  /** The words and here-documents that enclose the position; a placeholder belongs to them all. */
  protected readonly enclosing: Collector[] = [];
  readonly #lineStarts: number[] = [0];

  constructor(src: string, isPlaceholder: (name: string) => boolean) {
    this.src = src;
    this.isPlaceholder = isPlaceholder;
    this.limit = src.length;
    for (let j = 0; j < src.length; j++) if (src[j] === '\n') this.#lineStarts.push(j + 1);
  }

  /** The 1-based line of `offset`. */
  lineOf(offset: number): number {
    let lo = 0;
    let hi = this.#lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }

  protected fail(what: string, at: number): never {
    throw new ShellScanError(what, this.lineOf(at));
  }

  protected site(start: number, name: string, length: number, quoting: Quoting): void {
    const site: Site = { start, end: start + length, name, quoting, line: this.lineOf(start) };
    this.sites.push(site);
    for (const collector of this.enclosing) collector.sites.push(site);
  }

  /** Placeholders in text the shell does not expand (single quotes, comments, quoted here-documents). */
  protected literalSites(from: number, to: number, quoting: Quoting): void {
    for (let j = this.src.indexOf('${', from); j >= 0 && j < to; j = this.src.indexOf('${', j + 2)) {
      const found = plainPlaceholderAt(this.src, j);
      if (found && j + found.length <= to && this.isPlaceholder(found.name)) this.site(j, found.name, found.length, quoting);
    }
  }
}
