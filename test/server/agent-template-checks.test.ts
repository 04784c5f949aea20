/**
 * Import checks for templates of this project's executors (issue 9, items 1 and 7): what would make
 * every agent skip a template's jobs, or run a job's value as code, is a 400 at import; templates of
 * other executors are not judged by these rules.
 */
import { describe, expect, it } from 'vitest';
import { startWithFixtures } from '../helpers/fixtures.js';

const p = (def: unknown, types = ['str']) => ({ types, default: def, const: true, help: '' });

function spec(executor: string, parameters: Record<string, unknown>, inputs?: unknown[]): Record<string, unknown> {
  return { name: 'checked', version: 1, scope: 'public', licence: 'MIT', specific: { job_type: 'Run', executor_class: executor, required_packages: '', parameters, ...(inputs ? { inputs } : {}) } };
}

describe('import of ufdl_agent templates', () => {
  it('refuses what no agent could run safely, naming why', async () => {
    const fx = await startWithFixtures();
    const cases: [string, Record<string, unknown>, number, RegExp][] = [
      ['two parameters, one variable', spec('ufdl_agent.Shell', { body: p('true'), 'num-classes': p('1'), num_classes: p('2') }), 400, /parameter 'num_classes' and parameter 'num-classes' would both be the environment variable UFDL_PARAM_num_classes/],
      ['an input shadowing the contract', spec('ufdl_agent.Shell', { body: p('true') }, [{ name: 'DIR', types: ['str'] }]), 400, /input 'DIR' and the job contract would both be the environment variable UFDL_INPUT_DIR/],
      ['an output name with a slash', spec('ufdl_agent.Command', { body: p(['true'], ['Array<str>']), outputs: p({ '../x': 'BLOB' }, ['JSON']) }), 400, /output name "..\/x" contains a path separator/],
      ['a value in the code of sh -c', spec('ufdl_agent.Command', { body: p(['sh', '-c', 'echo ${name}'], ['Array<str>']), name: p('x') }), 400, /^Unsafe job template: .*argv\[2\] is part of the code that 'sh' runs/],
      ['a value as the program', spec('ufdl_agent.Command', { body: p(['${name}'], ['Array<str>']), name: p('x') }), 400, /names the program to run/],
      ['an unreadable script', spec('ufdl_agent.Shell', { body: p('echo "${name}'), name: p('x') }), 400, /the script cannot be read: an unterminated double quote \(line 1\)/],
    ];
    for (const [what, body, status, detail] of cases) {
      const res = await fx.call('POST', '/v1/job-templates/import', { json: body });
      expect(res.status, what).toBe(status);
      expect(res.body.detail, what).toMatch(detail);
    }
  });

  it('accepts safe bodies, and leaves templates of other executors alone', async () => {
    const fx = await startWithFixtures();
    const ok = [
      spec('ufdl_agent.Command', { body: p(['sh', '-c', 'echo "$1"', 'sh', '${name}'], ['Array<str>']), name: p('x') }),
      spec('ufdl_agent.Shell', { body: p(['set -e', 'echo "${name}" > "$UFDL_OUTPUT_DIR/out.txt"'], ['Array<str>']), name: p('x') }),
      spec('yolo.Executor', { body: p("python -c 'print(\"${name}\")'"), name: p('x'), 'a-b': p(''), a_b: p('') }),
    ];
    for (const body of ok) {
      const res = await fx.call('POST', '/v1/job-templates/import', { json: body });
      expect(res.status, res.text).toBe(200);
    }
  });
});
