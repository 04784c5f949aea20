import { describe, expect, it } from 'vitest';
import { checkSimpleValue, isSubtype, normaliseTypeString, parseTypeString, TypeStringError } from '../../src/protocol/type-string.js';

describe('type strings', () => {
  it('parses nested types, string, number and boolean constants', () => {
    const t = parseTypeString("PK<Dataset<Domain<'Image Classification'>>>");
    expect(t.name).toBe('PK');
    const dataset = t.args[0];
    expect(dataset).toMatchObject({ kind: 'type', name: 'Dataset' });
    expect(parseTypeString('Compressed<JSON, 8>').args).toEqual([
      { kind: 'type', name: 'JSON', args: [] },
      { kind: 'num', value: 8 },
    ]);
    expect(parseTypeString('Flag<true>').args).toEqual([{ kind: 'bool', value: true }]);
  });

  it('normalises spacing and quotes the way the reference re-prints types', () => {
    expect(normaliseTypeString('Compressed<JSON,8>')).toBe('Compressed<JSON, 8>');
    expect(normaliseTypeString(`Framework< "dogs_dummy" ,'1' >`)).toBe("Framework<'dogs_dummy', '1'>");
  });

  it.each(['', 'PK<', 'PK<Dataset', 'PK<>', "Domain<'x>", 'A<B> trailing', '<int>'])('rejects %j with a position', (bad) => {
    expect(() => parseTypeString(bad)).toThrow(TypeStringError);
  });

  it('treats a bare allowed type as open and compares arguments otherwise', () => {
    const p = parseTypeString;
    expect(isSubtype(p("JobOutput<Model<Domain<'ic'>, Framework<'x', '1'>>>"), p('JobOutput'))).toBe(true);
    expect(isSubtype(p("JobOutput<Model<Domain<'ic'>>>"), p('JobOutput<Model<Domain>>'))).toBe(true);
    expect(isSubtype(p("JobOutput<Model<Domain<'ic'>>>"), p("JobOutput<Model<Domain<'od'>>>"))).toBe(false);
    expect(isSubtype(p('int'), p('float'))).toBe(true);
    expect(isSubtype(p('float'), p('int'))).toBe(false);
    expect(isSubtype(p('str'), p('int'))).toBe(false);
  });

  it('checks values of the simple types', () => {
    const p = parseTypeString;
    expect(checkSimpleValue(p('int'), 3)).toBeUndefined();
    expect(checkSimpleValue(p('int'), 3.5)).toMatch(/integer/);
    expect(checkSimpleValue(p('int'), 'abc')).toMatch(/integer/);
    expect(checkSimpleValue(p('float'), 0.5)).toBeUndefined();
    expect(checkSimpleValue(p('bool'), 'true')).toMatch(/true or false/);
    expect(checkSimpleValue(p('str'), 1)).toMatch(/string/);
    expect(checkSimpleValue(p('JSON'), { any: ['thing'] })).toBeUndefined();
    expect(checkSimpleValue(p('Array<int>'), [1, 'x'])).toMatch(/element 1/);
    expect(checkSimpleValue(p('JobOutput<BLOB>'), 0)).toMatch(/primary key/);
  });
});
