import { describe, expect, it } from 'vitest';
import {
  expandArgv,
  expandString,
  expansionValues,
  resolveInputs,
  resolveParameters,
} from '../../../src/agent/executors/template-params.js';
import { stringifyValue } from '../../../src/protocol/value-env.js';
import { job, param, prepareError, required, template, typed } from './fixtures.js';

const values = (o: Record<string, unknown>) => expansionValues(o);

describe('resolveParameters', () => {
  const t = template('ufdl_agent.Command', {
    epochs: param(10, ['int'], false),
    name: param('model'),
    nothing: param(null, ['str']),
    extra: required(['str']),
  });

  it("takes the job's value over the template default", () => {
    const resolved = resolveParameters(job(1, { epochs: typed(3, 'int'), extra: typed('x') }), t);
    expect(resolved).toEqual({ epochs: 3, name: 'model', nothing: null, extra: 'x' });
  });

  it('treats a null parameter_values like an empty one (reference bug B3)', () => {
    const allDefaults = template('ufdl_agent.Command', { name: param('model'), n: param(2, ['int']) });
    expect(resolveParameters(job(1, null), allDefaults)).toEqual({ name: 'model', n: 2 });
    expect(prepareError(() => resolveParameters(job(1, null), t)).code).toBe('UFDL_ERR_AGENT_PARAM_MISSING');
  });

  it('names a parameter that has no value and no default', () => {
    const err = prepareError(() => resolveParameters(job(9, {}), t));
    expect(err.code).toBe('UFDL_ERR_AGENT_PARAM_MISSING');
    expect(err.subject).toBe('extra');
    expect(err.message).toBe("Parameter 'extra' has no value in job 9 and no default in template 'test-template'");
  });

  it('ignores job values for parameters the template does not declare', () => {
    expect(resolveParameters(job(1, { extra: typed('x'), stray: typed(1, 'int') }), t)).not.toHaveProperty('stray');
  });
});

describe('resolveInputs', () => {
  it('uses the local path of a downloaded input, else its value', () => {
    const j = job(1, {}, { model: typed(12, 'JobOutput<Model>'), threshold: typed(0.5, 'float') });
    expect(resolveInputs(j, { model: '/w/1/input/model' })).toEqual({ model: '/w/1/input/model', threshold: 0.5 });
  });
});

describe('expansionValues', () => {
  it('lets parameters win over inputs, and both over executor extras', () => {
    const v = expansionValues({ a: 'param' }, { a: 'input', b: 'input' }, { a: 'extra', b: 'extra', c: 'extra' });
    expect([...v.entries()].sort()).toEqual([
      ['a', 'param'],
      ['b', 'input'],
      ['c', 'extra'],
    ]);
  });
});

describe('stringifyValue', () => {
  it('renders strings as they are, numbers and booleans plainly, null as empty, objects as JSON', () => {
    expect(['s', 3, 0.5, true, false, null, undefined, [1, 'a'], { k: 1 }].map(stringifyValue)).toEqual([
      's',
      '3',
      '0.5',
      'true',
      'false',
      '',
      '',
      '[1,"a"]',
      '{"k":1}',
    ]);
  });
});

describe('expandString', () => {
  const v = values({ name: 'resnet', epochs: 5, on: true, off: false, on_s: 'TRUE', nested: 'x', 'num-classes': 3 });

  it('replaces ${name} with the value, everywhere it occurs', () => {
    expect(expandString('${name}-${epochs}/${name}', v)).toBe('resnet-5/resnet');
    expect(expandString('${num-classes} classes', v)).toBe('3 classes');
  });

  it('keeps ${+flag:text} only when the flag is true, ${-flag:text} only when false', () => {
    expect(expandString('a${+on:--yes}b${+off:--no}c', v)).toBe('a--yesbc');
    expect(expandString('a${-on:--yes}b${-off:--no}c', v)).toBe('ab--noc');
    expect(expandString('${+on_s:string flags work}', v)).toBe('string flags work');
  });

  it('expands placeholders inside kept flag text', () => {
    expect(expandString('${+on:--model ${name} --n ${epochs}}', v)).toBe('--model resnet --n 5');
    expect(expandString('${-on:--model ${name}}', v)).toBe('');
  });

  it('leaves unknown ${…} alone (shell variables are not ours)', () => {
    expect(expandString('echo ${HOME} ${name} ${x:-default} ${#arr} $name', v)).toBe(
      'echo ${HOME} resnet ${x:-default} ${#arr} $name',
    );
    expect(expandString('dangling ${name', v)).toBe('dangling ${name');
  });

  it('refuses a flag that names nothing, or whose value is not a boolean', () => {
    const unknown = prepareError(() => expandString('${+verbose:-v}', v));
    expect([unknown.code, unknown.subject]).toEqual(['UFDL_ERR_AGENT_PARAM_UNKNOWN', 'verbose']);
    const notBool = prepareError(() => expandString('${+name:-v}', v));
    expect([notBool.code, notBool.subject]).toEqual(['UFDL_ERR_AGENT_PARAM_BAD', 'name']);
  });
});

describe('expandArgv', () => {
  const v = values({ verbose: false, debug: true, epochs: 7, extra: ['--a', '', 'b'], none: '', obj: { k: 1 } });

  it('expands each entry and drops the ones that become empty', () => {
    expect(expandArgv(['run', '${+verbose:-v}', '${+debug:-d}', '--epochs=${epochs}', '${none}', ''], v)).toEqual([
      'run',
      '-d',
      '--epochs=7',
    ]);
  });

  it('splices an array value given as a whole entry, and does not split strings', () => {
    expect(expandArgv(['x', '${extra}', 'y z', 'json=${obj}'], v)).toEqual(['x', '--a', 'b', 'y z', 'json={"k":1}']);
    expect(expandArgv(['list=${extra}'], v)).toEqual(['list=["--a","","b"]']);
  });
});
