/**
 * The last lines of a log file, read from its end in bounded chunks: a job's finish error quotes the
 * tail of its log (a bounded tail, not the whole output as the reference worker sends).
 */
import { open } from 'node:fs/promises';

/** Options of {@link tailLines}. */
export interface TailOptions {
  /**
   * Read at most this many bytes from the end, however few lines they hold (a child that writes one
   * endless line must not make the agent read gigabytes).
   * @default 65536
   */
  maxBytes?: number;
}

const CHUNK = 8192;

/** The last `n` lines of `file` (without their newlines); `[]` if the file is missing or empty. */
export async function tailLines(file: string, n: number, options: TailOptions = {}): Promise<string[]> {
  if (n <= 0) return [];
  const maxBytes = options.maxBytes ?? 65536;
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return [];
  }
  try {
    const { size } = await handle.stat();
    const floor = Math.max(0, size - maxBytes);
    const chunks: Buffer[] = [];
    let position = size;
    let newlines = 0;
    // Stop once there are n+1 newlines: the text after the (n+1)-th from the end holds n lines
    // (a trailing newline ends the last line; it does not start an empty one).
    while (position > floor && newlines <= n) {
      const length = Math.min(CHUNK, position - floor);
      position -= length;
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, position);
      chunks.unshift(buffer);
      for (const byte of buffer) if (byte === 0x0a) newlines++;
    }
    let text = Buffer.concat(chunks).toString('utf8');
    if (text.endsWith('\n')) text = text.slice(0, -1);
    if (text === '') return [];
    const lines = text.split('\n');
    // The first line may be cut by maxBytes; it is still the best tail there is unless we have more.
    return lines.slice(-n).map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  } finally {
    await handle.close();
  }
}
