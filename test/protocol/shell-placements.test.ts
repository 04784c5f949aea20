/**
 * Where a `${name}` may sit in a `ufdl_agent.Shell` script, and what it becomes: a reference to the
 * value's environment variable, an integer-only reference in arithmetic, or a refusal where the text
 * is code for some program (issue 9, item 1).
 */
import { describe, expect, it } from 'vitest';
import { resolveFlags } from '../../src/protocol/placeholders.js';
import { argvProblem, shellScriptProblem } from '../../src/protocol/shell/body-checks.js';
import { firstRefusal, placePlaceholders, rewriteScript, ShellScanError } from '../../src/protocol/shell/placements.js';
import { parameterEnvName, valueEnvClash } from '../../src/protocol/value-env.js';

const known = (name: string): boolean => ['name', 'n', 'num-classes'].includes(name);

/** `name:verdict` per placeholder; `refused` with the first words of the reason. */
function verdicts(script: string): string[] {
  return placePlaceholders(script, known).map((p) =>
    p.verdict === 'refused' ? `${p.site.name}:refused` : p.verdict === 'integer' ? `${p.site.name}:integer` : `${p.site.name}:${p.quoted ? '"ref"' : 'ref'}`,
  );
}

function rewritten(script: string): string {
  return rewriteScript(script, placePlaceholders(script, known), parameterEnvName);
}

describe('placements that keep a value data', () => {
  it.each([
    ['a plain word', 'printf %s ${name}', 'printf %s "${UFDL_PARAM_name}"'],
    ['an assignment', 'v=${name}; echo "$v"', 'v="${UFDL_PARAM_name}"; echo "$v"'],
    ['double quotes', 'echo "Hello ${name}!"', 'echo "Hello ${UFDL_PARAM_name}!"'],
    ['an unquoted here-document', 'cat <<EOF\n${name}\nEOF', 'cat <<EOF\n${UFDL_PARAM_name}\nEOF'],
    ['a comment', '# ${name}\necho hi', '# ${UFDL_PARAM_name}\necho hi'],
    ['a command substitution', 'echo "$(printf %s ${name})"', 'echo "$(printf %s "${UFDL_PARAM_name}")"'],
    ['backquotes', 'v=`printf %s ${name}`', 'v=`printf %s "${UFDL_PARAM_name}"`'],
    ['a case subject and pattern', 'case ${name} in ${name}) echo y;; esac', 'case "${UFDL_PARAM_name}" in "${UFDL_PARAM_name}") echo y;; esac'],
    ['a default of a shell expansion', 'echo ${HOME:-${name}}', 'echo ${HOME:-"${UFDL_PARAM_name}"}'],
    ['the data after sh -c', `sh -c 'echo "$1"' sh \${name}`, `sh -c 'echo "$1"' sh "\${UFDL_PARAM_name}"`],
    ['a here-string to a program that reads data', 'tr a b <<< ${name}', 'tr a b <<< "${UFDL_PARAM_name}"'],
    ['a name with a dash', 'echo ${num-classes}', 'echo "${UFDL_PARAM_num_classes}"'],
  ])('%s', (_what, script, expected) => {
    expect(firstRefusal(placePlaceholders(script, known))).toBeUndefined();
    expect(rewritten(script)).toBe(expected);
  });

  it('leaves the shell its own variables', () => {
    expect(rewritten('echo ${HOME} $name ${other} ${UFDL_OUTPUT_DIR}')).toBe('echo ${HOME} $name ${other} ${UFDL_OUTPUT_DIR}');
  });

  it('asks for an integer in arithmetic', () => {
    expect(verdicts('echo $(( ${n} + 1 ))')).toEqual(['n:integer']);
    expect(verdicts('(( ${n} > 2 ))')).toEqual(['n:integer']);
    expect(verdicts('let x=${n}+1')).toEqual(['n:integer']);
    expect(verdicts('[[ ${n} -gt 2 ]]')).toEqual(['n:integer']);
  });
});

describe('placements where a value would be code', () => {
  it.each([
    ['single quotes (python -c)', `python3 -c 'print("\${name}")'`],
    ['single quotes (awk)', `awk 'BEGIN { print "\${name}" }'`],
    ["$'…'", `echo $'\${name}'`],
    ['a quoted here-document', `cat <<'EOF'\n\${name}\nEOF`],
    ['eval', 'eval "echo ${name}"'],
    ['eval of a substitution', 'eval "$(printf %s ${name})"'],
    ['sh -c', 'sh -c "echo ${name}"'],
    ['bash -ec', 'bash -ec "echo ${name}"'],
    ['python3 -c in double quotes', `python3 -c "print('\${name}')"`],
    ['python3 -m', 'python3 -m ${name}'],
    ['perl -e', 'perl -e "print q(${name})"'],
    ['node --eval=', 'node --eval="${name}"'],
    ['an awk program', 'awk "{ print \\"${name}\\" }" file'],
    ['a sed script', 'sed "s/x/${name}/" file'],
    ['sed -e', 'sed -n -e "s/x/${name}/p" file'],
    ['a here-document read by an interpreter', 'python3 <<EOF\nprint("${name}")\nEOF'],
    ['a pipe into a shell', 'echo "${name}" | sh'],
    ['a here-string into a shell', 'bash <<< "${name}"'],
    ['the program name', '${name} --help'],
    ['the program after exec', 'exec ${name}'],
    ['sh -c behind env and timeout', 'env A=1 timeout 5 sh -c "echo ${name}"'],
    ['a script to source', '. ${name}'],
    ['a trap', 'trap "echo ${name}" EXIT'],
    ['the script a shell runs', 'sh ${name}'],
  ])('%s', (_what, script) => {
    const refusal = firstRefusal(placePlaceholders(script, known));
    expect(refusal?.site.name).toBe('name');
  });

  it('refuses the whole script where it cannot follow it', () => {
    expect(() => placePlaceholders('echo "${name}', known)).toThrow(ShellScanError);
    expect(() => placePlaceholders("echo '${name}", known)).toThrow(/unterminated single quote \(line 1\)/);
    expect(() => placePlaceholders('echo ok\necho $(date', known)).toThrow(/line 2/);
  });

  it('says where and what to do instead', () => {
    const problem = shellScriptProblem("set -e\npython3 -c 'print(\"${name}\")'", {
      parameters: { name: { types: ['str'] } },
      inputs: [],
      variable: parameterEnvName,
    });
    expect(problem).toMatch(/^\$\{name\} on line 2 is inside single quotes/);
    expect(problem).toContain('"$UFDL_PARAM_name"');
  });

  it('checks both ways of every flag, and arithmetic against the declared type', () => {
    const declared = { parameters: { name: { types: ['str'] }, n: { types: ['int'] }, q: { types: ['bool'] } }, inputs: [], variable: parameterEnvName };
    expect(shellScriptProblem('echo ${+q:${name}}', declared)).toBeUndefined();
    expect(shellScriptProblem('${-q:eval} echo ${name}', declared)).toMatch(/code that 'eval' runs/);
    expect(shellScriptProblem('echo $(( ${n} * 2 ))', declared)).toBeUndefined();
    expect(shellScriptProblem('echo $(( ${name} * 2 ))', declared)).toMatch(/arithmetic .* of type str/);
  });
});

describe('argv bodies (ufdl_agent.Command)', () => {
  const isParam = (name: string): boolean => name === 'name';
  it('refuses a value in the code of sh -c or python3 -c, or as the program', () => {
    expect(argvProblem(['sh', '-c', 'echo ${name}'], isParam, parameterEnvName)).toMatch(/argv\[2\] is part of the code that 'sh' runs/);
    expect(argvProblem(['/usr/bin/python3', '-c', 'print("${name}")'], isParam, parameterEnvName)).toMatch(/python3/);
    expect(argvProblem(['${name}', '--help'], isParam, parameterEnvName)).toMatch(/names the program/);
  });
  it('accepts values as arguments', () => {
    expect(argvProblem(['sh', '-c', 'echo "$1"', 'sh', '${name}'], isParam, parameterEnvName)).toBeUndefined();
    expect(argvProblem(['python3', 'train.py', '--name', '${name}'], isParam, parameterEnvName)).toBeUndefined();
  });
});

describe('flags and environment names', () => {
  it('resolves flags and nothing else', () => {
    const truth = (name: string): boolean => name === 'on';
    expect(resolveFlags('a ${+on:b ${name}} ${-on:c} ${HOME:-${+on:d}}', truth)).toBe('a b ${name}  ${HOME:-d}');
  });

  it('refuses two names for one variable, or one that shadows the contract', () => {
    expect(valueEnvClash(['num-classes', 'num_classes'], [])).toMatch(/UFDL_PARAM_num_classes/);
    expect(valueEnvClash([], ['DIR'])).toMatch(/input 'DIR' and the job contract/);
    expect(valueEnvClash(['a', 'b'], ['a'])).toBeUndefined();
  });
});
