import { appendFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProgressCoalescer } from '../../../src/agent/progress/coalescer.js';
import { LineFollower } from '../../../src/agent/progress/line-follower.js';
import { parseMarkerLine } from '../../../src/agent/progress/marker.js';
import { guardParser, regexProgressParser } from '../../../src/agent/progress/regex-parser.js';
import type { ProgressUpdate } from '../../../src/agent/progress/update.js';
import { until } from '../../helpers/wait.js';
import { tempWorkDir } from '../child/helpers.js';

describe('parseMarkerLine', () => {
  it.each([
    ['UFDL-PROGRESS 0.25', { progress: 0.25, data: {} }],
    ['UFDL-PROGRESS 1', { progress: 1, data: {} }],
    ['UFDL-PROGRESS 0', { progress: 0, data: {} }],
    ['UFDL-PROGRESS .5   ', { progress: 0.5, data: {} }],
    ['UFDL-PROGRESS 1e-3', { progress: 0.001, data: {} }],
    ['UFDL-PROGRESS 0.5 {"comment": "half", "n": [1, 2]}', { progress: 0.5, data: { comment: 'half', n: [1, 2] } }],
    ['UFDL-PROGRESS 0.5\t{}', { progress: 0.5, data: {} }],
  ])('reads %j', (line, expected) => {
    expect(parseMarkerLine(line)).toEqual(expected);
  });

  it.each([
    'UFDL-PROGRESS',
    'UFDL-PROGRESS ',
    'UFDL-PROGRESS 1.5',
    'UFDL-PROGRESS -0.1',
    'UFDL-PROGRESS half',
    'UFDL-PROGRESS NaN',
    'UFDL-PROGRESS 0.5 {bad json}',
    'UFDL-PROGRESS 0.5 [1, 2]',
    'UFDL-PROGRESS 0.5 "text"',
    'UFDL-PROGRESS 0.5 null',
    ' UFDL-PROGRESS 0.5',
    'INFO UFDL-PROGRESS 0.5',
    'UFDL-PROGRESS0.5',
    'ufdl-progress 0.5',
  ])('ignores %j', (line) => {
    expect(parseMarkerLine(line)).toBeUndefined();
  });
});

describe('regexProgressParser', () => {
  it('reads a progress group as a fraction or a percentage', () => {
    const p = regexProgressParser(/progress: (?<progress>[\d.]+%?)/);
    expect(p('progress: 0.4', 0)).toEqual({ progress: 0.4, data: {} });
    expect(p('progress: 45%', 0)).toEqual({ progress: 0.45, data: {} });
    expect(p('progress: 1.4', 0)).toBeUndefined(); // out of range: something else matched
    expect(p('nothing here', 0)).toBeUndefined();
  });

  it('reads a percent group, and epoch/epochs with both in the body', () => {
    expect(regexProgressParser(/(?<percent>\d+)%\|/)(' 37%|####', 0)).toEqual({ progress: 0.37, data: {} });
    const epochs = regexProgressParser(/Epoch (?<epoch>\d+)\/(?<epochs>\d+)/);
    expect(epochs('Epoch 3/12 loss=0.2', 0)).toEqual({ progress: 0.25, data: { epoch: 3, epochs: 12 } });
    expect(epochs('Epoch 3/0', 0)).toBeUndefined();
  });

  it('matches only the start of an enormous line, and copes with a global regex', () => {
    const p = regexProgressParser(/at (?<progress>0\.\d+)/g, { maxInputLength: 100 });
    expect(p(`${'x'.repeat(200)} at 0.5`, 0)).toBeUndefined();
    // A shared lastIndex would make every second exec fail.
    expect([p('at 0.1', 0), p('at 0.2', 0), p('at 0.3', 0)].map((u) => u?.progress)).toEqual([0.1, 0.2, 0.3]);
  });
});

describe('guardParser', () => {
  it('disables a parser after its first exception and reports that once', () => {
    const errors: unknown[] = [];
    let calls = 0;
    const parser = guardParser(
      (line) => {
        calls++;
        if (line === 'boom') throw new Error('bad parser');
        return { progress: 0.5, data: {} };
      },
      (err) => errors.push(err),
    );
    expect(parser('ok', 0)).toEqual({ progress: 0.5, data: {} });
    expect(parser.disabled).toBe(false);
    expect(parser('boom', 0)).toBeUndefined();
    expect(parser('ok', 0)).toBeUndefined();
    expect(parser.disabled).toBe(true);
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
  });
});

describe('LineFollower', () => {
  async function follow(file: string, options: { maxLineLength?: number; chunkBytes?: number } = {}) {
    const lines: string[] = [];
    const follower = new LineFollower(file, { onLine: (l) => lines.push(l), pollMs: 20, ...options });
    follower.start();
    return { lines, follower };
  }

  it('delivers complete lines as they are appended, and the unterminated rest on stop', async () => {
    const file = join(await tempWorkDir(), 'stdout.log');
    const { lines, follower } = await follow(file); // the file does not exist yet
    await appendFile(file, 'first\nsec');
    await until(() => lines.length === 1, 20_000, 'the first line');
    await appendFile(file, 'ond\r\nthird\rfourth\r');
    await until(() => lines.length === 4, 20_000, 'four lines');
    await appendFile(file, '\n\n\nfifth, unterminated');
    await follower.stop();
    expect(lines).toEqual(['first', 'second', 'third', 'fourth', 'fifth, unterminated']);
    expect(follower.lines).toBe(5);
  });

  it('reassembles lines and UTF-8 characters split across reads', async () => {
    const file = join(await tempWorkDir(), 'stdout.log');
    const text = Array.from({ length: 500 }, (_, i) => `zeile ${i} — größe ✓ \r`).join('\n');
    await writeFile(file, text);
    const { lines, follower } = await follow(file, { chunkBytes: 7 });
    await follower.stop();
    expect(lines).toEqual(Array.from({ length: 500 }, (_, i) => `zeile ${i} — größe ✓ `));
  });

  it('cuts an endless line to maxLineLength without holding it all', async () => {
    const file = join(await tempWorkDir(), 'stdout.log');
    const { lines, follower } = await follow(file, { maxLineLength: 10, chunkBytes: 64 });
    await appendFile(file, `${'a'.repeat(100_000)}\nshort\n${'b'.repeat(50)}`);
    await follower.stop();
    expect(lines).toEqual(['aaaaaaaaaa', 'short', 'bbbbbbbbbb']);
  });

  it('starts over when the file is truncated', async () => {
    const file = join(await tempWorkDir(), 'stdout.log');
    await writeFile(file, 'one\ntwo\n');
    const { lines, follower } = await follow(file);
    await until(() => lines.length === 2, 20_000, 'two lines');
    await truncate(file, 0);
    await until(() => follower.offset === 0, 20_000, 'the truncation to be noticed');
    await appendFile(file, 'three\n');
    await follower.stop();
    expect(lines).toEqual(['one', 'two', 'three']);
  });

  it('can start at an offset', async () => {
    const file = join(await tempWorkDir(), 'stdout.log');
    await writeFile(file, 'old\nnew\n');
    const lines: string[] = [];
    const follower = new LineFollower(file, { onLine: (l) => lines.push(l), startOffset: 4 });
    follower.start();
    await follower.stop();
    expect(lines).toEqual(['new']);
  });
});

describe('ProgressCoalescer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const u = (progress: number, data: Record<string, unknown> = {}): ProgressUpdate => ({ progress, data });

  it('sends the first update at once, then at most one per interval, always the latest', async () => {
    vi.useFakeTimers();
    const sent: ProgressUpdate[] = [];
    const c = new ProgressCoalescer({ intervalMs: 1000, report: (x) => void sent.push(x), now: () => Date.now() });
    c.push(u(0.1));
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([u(0.1)]);
    for (let i = 2; i <= 9; i++) c.push(u(i / 10, { step: i }));
    await vi.advanceTimersByTimeAsync(999);
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toEqual([u(0.1), u(0.9, { step: 9 })]);
    c.push(u(0.95));
    await vi.advanceTimersByTimeAsync(500);
    expect(sent).toHaveLength(2);
    await c.stop(); // the final value is flushed without waiting for the interval
    expect(sent).toEqual([u(0.1), u(0.9, { step: 9 }), u(0.95)]);
    c.push(u(1));
    await vi.advanceTimersByTimeAsync(5000);
    expect(sent).toHaveLength(3);
  });

  it('skips an update that says nothing new, but not one with new data', async () => {
    vi.useFakeTimers();
    const sent: ProgressUpdate[] = [];
    const c = new ProgressCoalescer({ intervalMs: 100, report: (x) => void sent.push(x) });
    c.push(u(0.5, { a: 1 }));
    await vi.advanceTimersByTimeAsync(200);
    c.push(u(0.5, { a: 1 }));
    await vi.advanceTimersByTimeAsync(200);
    c.push(u(0.5, { a: 2 }));
    await c.stop();
    expect(sent).toEqual([u(0.5, { a: 1 }), u(0.5, { a: 2 })]);
  });

  it('never overlaps reports: a slow report delays the next, which carries the latest value', async () => {
    vi.useFakeTimers();
    const sent: number[] = [];
    let active = 0;
    let maxActive = 0;
    const c = new ProgressCoalescer({
      intervalMs: 100,
      report: async (x) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 1000));
        sent.push(x.progress);
        active--;
      },
    });
    c.push(u(0.1));
    await vi.advanceTimersByTimeAsync(50);
    c.push(u(0.2));
    await vi.advanceTimersByTimeAsync(300);
    c.push(u(0.3));
    await vi.advanceTimersByTimeAsync(5000);
    await c.stop();
    expect(sent).toEqual([0.1, 0.3]);
    expect(maxActive).toBe(1);
  });

  it('never reports a value below one already reported, nor below its floor (keeping the data)', async () => {
    vi.useFakeTimers();
    const sent: ProgressUpdate[] = [];
    const c = new ProgressCoalescer({ intervalMs: 10, floor: 0.25, report: (x) => void sent.push(x) });
    c.push(u(0.1, { epoch: 1 }));
    await vi.advanceTimersByTimeAsync(20);
    c.push(u(0.5, { epoch: 5 }));
    await vi.advanceTimersByTimeAsync(20);
    c.push(u(0.05, { phase: 2 }));
    await c.stop();
    expect(sent).toEqual([u(0.25, { epoch: 1 }), u(0.5, { epoch: 5 }), u(0.5, { phase: 2 })]);
  });

  it('carries on after a failed report', async () => {
    vi.useFakeTimers();
    const errors: unknown[] = [];
    const sent: number[] = [];
    const c = new ProgressCoalescer({
      intervalMs: 10,
      report: (x) => {
        if (x.progress === 0.1) throw new Error('406');
        sent.push(x.progress);
      },
      onError: (err) => errors.push(err),
    });
    c.push(u(0.1));
    await vi.advanceTimersByTimeAsync(20);
    c.push(u(0.2));
    await c.stop();
    expect(sent).toEqual([0.2]);
    expect(errors).toHaveLength(1);
  });
});
