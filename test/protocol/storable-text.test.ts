import { describe, expect, it } from 'vitest';
import { storableJson, storableText } from '../../src/protocol/storable-text.js';

describe('storable text', () => {
  it('replaces NUL and lone surrogates, high or low, and keeps pairs and other text', () => {
    expect(storableText('a\u0000b')).toBe('a\uFFFDb');
    // A line cut in the middle of an emoji leaves its high half; a cut at the start, the low half.
    expect(storableText('cut \ud83d')).toBe('cut \uFFFD');
    expect(storableText('\ude00 rest')).toBe('\uFFFD rest');
    expect(storableText('ok 😀 é\t\n')).toBe('ok 😀 é\t\n');
  });

  it('applies to every string and key at any depth, and leaves other values as they are', () => {
    expect(storableJson({ 'k\u0000': ['\ud800', 1, null, true, { deep: 'x\u0000' }], n: 2.5 })).toEqual({ 'k\uFFFD': ['\uFFFD', 1, null, true, { deep: 'x\uFFFD' }], n: 2.5 });
    expect(storableJson('\u0000')).toBe('\uFFFD');
    expect(storableJson(7)).toBe(7);
  });
});
