/**
 * A hostile user against `ufdl_agent.Shell` templates (issue 9, item 1): Shell templates with `${name}`
 * in each placement a template author might write are imported by an admin, and a user without admin
 * rights submits values built to run a command on the node. A placement where the value stays data is
 * imported and its jobs run with the value printed verbatim; a placement where it would be code is
 * refused at import. No payload may run either way.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { downloadOutput, ended, importTemplate, shellTemplate, startTestAgent, waitForJob } from '../../helpers/agent.js';
import { api, startTestServer, type TestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

/** Scripts whose `${name}` keeps the value data; each prints the value once, framed by `[` `]`. */
const SAFE = {
  'a plain word': "printf '[%s]\\n' ${name}",
  'an assignment': 'v=${name}\nprintf \'[%s]\\n\' "$v"',
  'double quotes': 'printf \'%s\\n\' "[${name}]"',
  'an unquoted here-document': 'cat <<EOF\n[${name}]\nEOF',
  'a comment': '# ${name}\nprintf \'[%s]\\n\' "$UFDL_PARAM_name"',
  'a command substitution': 'printf \'[%s]\\n\' "$(printf \'%s\' ${name})"',
  'backquotes': 'v=`printf \'%s\' ${name}`\nprintf \'[%s]\\n\' "$v"',
  'a case pattern': 'case "$UFDL_PARAM_name" in ${name}) printf \'[%s]\\n\' "$UFDL_PARAM_name";; *) echo no;; esac',
};

/** Scripts whose `${name}` would be code for some program: refused at import. */
const UNSAFE = {
  'single quotes (python3 -c)': `python3 -c 'print("[\${name}]")'`,
  'single quotes (awk)': `awk 'BEGIN { print "[\${name}]" }'`,
  'a quoted here-document': "cat <<'EOF'\n[${name}]\nEOF",
  'eval': 'eval "echo [${name}]"',
  'arithmetic on a str parameter': 'echo $(( ${name} + 1 ))',
  'sh -c': 'sh -c "echo [${name}]"',
};

/** Values that run `touch <mark>` if any shell parses them. */
function payloads(mark: (i: number) => string): string[] {
  return [
    `$(touch ${mark(0)})`,
    `\`touch ${mark(1)}\``,
    `'; touch ${mark(2)}; '`,
    `"; touch ${mark(3)}; "`,
    `world\ntouch ${mark(4)} #`,
    `a[$(touch ${mark(5)})]`,
  ];
}

const NAME_PARAMETER = { name: { types: ['str'], default: 'world', help: 'who' } };

async function userToken(server: TestServer): Promise<string> {
  const created = await api(server.url, 'POST', '/v1/users/create', {
    token: server.adminToken,
    json: { username: 'mallory', password: 'mallory-password' },
  });
  expect(created.status).toBe(201);
  expect(created.body.is_staff).toBe(false);
  return server.login('mallory', 'mallory-password');
}

async function submit(server: TestServer, token: string, template: number, value: string): Promise<number> {
  const res = await api(server.url, 'POST', `/v1/job-templates/${template}/create-job`, {
    token,
    json: { input_values: {}, parameter_values: { name: { value, type: 'str' } }, description: '' },
  });
  expect(res.status, res.text).toBe(200);
  return res.body.pk as number;
}

describe('hostile values in Shell templates', () => {
  it('never run, whatever the placement of ${name}, and stay data where they are accepted', { timeout: 240_000 }, async () => {
    const server = await startTestServer();
    const marks = await tempDir('ufdl-marks-');
    const token = await userToken(server);

    for (const [placement, script] of Object.entries(UNSAFE)) {
      const res = await api(server.url, 'POST', '/v1/job-templates/import', {
        token: server.adminToken,
        json: shellTemplate(`unsafe-${Object.keys(UNSAFE).indexOf(placement)}`, script, NAME_PARAMETER),
      });
      expect(res.status, placement).toBe(400);
      expect(res.body.detail, placement).toMatch(/^Unsafe job template: specific\.parameters\.body: \$\{name\} on line \d+ /);
    }

    const jobs: { placement: string; value: string; pk: number }[] = [];
    const templates = new Map<string, number>();
    for (const [index, [placement, script]] of Object.entries(SAFE).entries()) {
      templates.set(placement, await importTemplate(server, shellTemplate(`safe-${index}`, script, NAME_PARAMETER)));
    }
    templates.set('shell-hello', await importTemplate(server, 'shell-hello'));
    await startTestAgent(server, { slots: 2 });
    for (const [index, [placement, template]] of [...templates].entries()) {
      for (const value of payloads((i) => join(marks, `placement${index}-payload${i}`))) {
        jobs.push({ placement, value, pk: await submit(server, token, template, value) });
      }
    }

    for (const { placement, value, pk } of jobs) {
      const job = await waitForJob(server, pk, ended, 120_000);
      expect(job.error_reason, `${placement}: ${JSON.stringify(value)}`).toBeNull();
      if (placement === 'shell-hello') {
        expect((await downloadOutput(server, pk, 'greeting.txt')).toString()).toBe(`Hello, ${value}!\n`);
      } else {
        expect((await downloadOutput(server, pk, 'log')).toString(), placement).toContain(`[${value}]\n`);
      }
    }
    expect(await readdir(marks)).toEqual([]);
  });
});
