/**
 * `ufdl-agent submit TEMPLATE [--param k=v]… [--input k=v]… [--description D] [--wait] [--json]`:
 * create a job from a template (by name: its latest active version; or by pk). Prints the job pk;
 * with `--wait` it follows the job and exits 0 when it finishes, 1 when it errors or is cancelled.
 * A meta-template starts a workflow: its parameters and inputs are its children's, named
 * `node:name` (`--param train:epochs=3`), and `--wait` follows every child until the workflow ends.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Command } from 'commander';
import { WEBSOCKET_NOTIFICATIONS, type UfdlClient } from '../../client/index.js';
import { isMetaTemplateJson, type TemplateJson } from '../../protocol/wire.js';
import { CliError } from '../cli-error.js';
import { about, connectFlags, withSession, type ConnectFlags } from '../connect.js';
import { EXIT } from '../exit-codes.js';
import { followJob, outcome } from '../follow.js';
import { inputValues, parameterValues } from '../job-values.js';
import { jobState } from '../job-state.js';
import { followLogTo } from '../live-log.js';
import { LiveView, printJson } from '../output.js';
import { WorkflowView } from '../workflow-view.js';

interface SubmitFlags extends ConnectFlags {
  param?: string[];
  input?: string[];
  description?: string;
  wait?: boolean;
  logs?: boolean;
  json?: boolean;
}

/** Repeatable options start undefined (so help shows no default) and collect into a list. */
const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

export function registerSubmit(program: Command): void {
  connectFlags(
    program
      .command('submit')
      .description('Create a job from a template (by name: its latest active version; or by pk) and print its pk')
      .argument('<template>', 'template name or pk')
      .option('-p, --param <name=value>', 'a parameter value, parsed by its declared type (repeatable; NAME:TYPE=VALUE names the type)', collect)
      .option('-i, --input <name=value>', 'an input value; JobOutput<…> inputs take an output pk (repeatable; NAME:TYPE=VALUE names the type)', collect)
      .option('-d, --description <text>', 'job description')
      .option('-w, --wait', 'follow the job until it ends; exit 0 when it finishes, 1 when it errors or is cancelled')
      .option('-l, --logs', "with --wait: show the job's log live, scrolling above the progress bar (servers with live logs)")
      .option('--json', 'print the created (with --wait: the ended) job as JSON'),
  ).action(async (ref: string, flags: SubmitFlags) => {
    await withSession(flags, async ({ client }) => {
      const template = await findTemplate(client, ref);
      const body = {
        input_values: inputValues(template, flags.input ?? []),
        parameter_values: parameterValues(template, flags.param ?? []),
        description: flags.description ?? '',
        // So that the job can be watched on the reference server too (it refuses watchers otherwise).
        ...(flags.wait ? { notification_override: WEBSOCKET_NOTIFICATIONS } : {}),
      };
      const job = await about(`template '${template.name}' (pk ${template.pk})`, client.createJob(template.pk, body));
      if (!flags.wait) {
        if (flags.json) printJson({ ...job, state: jobState(job) });
        else process.stdout.write(`${job.pk}\n`);
        return;
      }
      // With --json the live lines go to stderr, so that stdout is the job's JSON alone.
      if (!flags.json) process.stdout.write(`${job.pk}\n`);
      const view = new LiveView(flags.json ? process.stderr : process.stdout);
      const workflow = isMetaTemplateJson(template) ? await WorkflowView.detect(client, job, view) : undefined;
      // A workflow has no log of its own; each child's is its own (`ufdl-agent logs CHILD`).
      const logs = flags.logs && workflow === undefined ? await followLogAbove(client, job.pk, view) : undefined;
      const ended = await followJob(client, job.pk, view, { keepOpen: logs !== undefined, ...(workflow ? { workflow } : {}) });
      // The job has ended: its log ends too (a server that drops the connection gets a few seconds).
      await Promise.race([logs?.done.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
      logs?.close();
      view.close();
      if (flags.json) printJson({ ...ended, state: jobState(ended) });
      outcome(ended);
    });
  });
}

/**
 * A template by pk (digits) or by name: the highest version among the active templates of that name.
 * Unknown → status 1 naming what was asked for.
 */
export async function findTemplate(client: UfdlClient, ref: string): Promise<TemplateJson> {
  if (/^\d+$/.test(ref.trim())) {
    const pk = Number(ref.trim());
    if (!Number.isSafeInteger(pk) || pk <= 0) throw new CliError(EXIT.USAGE, `template pk must be a positive integer, got ${JSON.stringify(ref)}`);
    return about(`template ${pk}`, client.getTemplate(pk));
  }
  const matches = await client.listTemplates({
    expressions: [{ type: 'exact', field: 'name', value: ref }],
    order_by: [{ field: 'version', ascending: false }],
  });
  const latest = matches.filter((t) => t.name === ref && t.deletion_time === null).sort((a, b) => b.version - a.version)[0];
  if (!latest) throw new CliError(EXIT.FAILURE, `unknown template '${ref}': no active template has that name (see 'ufdl-agent templates list')`);
  // The list may not carry every field of a template on every server; the detail route does.
  return latest.parameters === undefined ? about(`template '${ref}'`, client.getTemplate(latest.pk)) : latest;
}

/** The job's live log above the progress bar, when the server has live logs (else a note, once). */
async function followLogAbove(client: UfdlClient, pk: number, view: LiveView): Promise<{ done: Promise<void>; close(): void } | undefined> {
  const capabilities = await client.getCapabilities().catch(() => null);
  if (!capabilities?.extensions.live_logs) {
    view.line(`job ${pk}: this server has no live logs; 'ufdl-agent logs ${pk}' prints the log once the job has ended`);
    return undefined;
  }
  const decoder = new StringDecoder('utf8');
  return followLogTo(client, pk, { write: (chunk) => view.above(typeof chunk === 'string' ? chunk : decoder.write(chunk)) }, 0, (message) => view.line(`job ${pk}: ${message}`));
}
