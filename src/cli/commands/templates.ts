/**
 * `ufdl-agent templates import FILE…` (admin; the reference's import format, one template or an array
 * of them per file) and `templates list [--json]`.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { isMetaTemplateJson, type TemplateJson } from '../../protocol/wire.js';
import { oneLineUsageErrors, usageError } from '../cli-error.js';
import { about, connectFlags, withSession, type ConnectFlags } from '../connect.js';
import { printJson, printTable } from '../output.js';

interface TemplateFlags extends ConnectFlags {
  json?: boolean;
  all?: boolean;
}

export function registerTemplates(program: Command): void {
  const templates = oneLineUsageErrors(program.command('templates')).description('Import and list job templates');

  connectFlags(
    templates
      .command('import')
      .description("Import job templates (admin) from JSON files in the reference's import format")
      .argument('<file...>', 'template files (each one template, or an array of templates)')
      .option('--json', 'print the imported templates as JSON'),
  ).action(async (files: string[], flags: TemplateFlags) => {
    // Read and parse every file first: a typo in the last file imports nothing.
    const specs = files.flatMap((file) => readSpecs(file).map((spec) => ({ file, spec })));
    await withSession(flags, async ({ client }) => {
      const imported: TemplateJson[] = [];
      for (const { file, spec } of specs) {
        const what = typeof spec.name === 'string' ? `template '${spec.name}' from ${file}` : `template from ${file}`;
        const template = await about(what, client.importTemplate(spec));
        imported.push(template);
        if (!flags.json) process.stdout.write(`imported ${template.name} version ${template.version} (pk ${template.pk}) from ${file}\n`);
      }
      if (flags.json) printJson(imported);
    });
  });

  connectFlags(
    templates
      .command('list')
      .description('List the active job templates: pk, name, version, type, executor')
      .option('--all', 'include deleted (inactive) templates')
      .option('--json', 'print JSON'),
  ).action(async (flags: TemplateFlags) => {
    await withSession(flags, async ({ client }) => {
      const list = (await client.listTemplates({ order_by: [{ field: 'name' }, { field: 'version' }], ...(flags.all ? { include_inactive: true } : {}) })).sort(
        (a, b) => a.name.localeCompare(b.name) || a.version - b.version,
      );
      if (flags.json) {
        printJson(list);
        return;
      }
      if (list.length === 0) {
        process.stderr.write("no templates (import some with 'ufdl-agent templates import FILE…')\n");
        return;
      }
      printTable(
        [{ title: 'pk', align: 'right' }, { title: 'name' }, { title: 'version', align: 'right' }, { title: 'type' }, { title: 'executor' }, ...(flags.all ? [{ title: 'deleted' }] : [])],
        list.map((t) => [
          String(t.pk),
          t.name,
          String(t.version),
          // A meta-template has no contract: it is a workflow of other templates.
          isMetaTemplateJson(t) ? 'workflow' : (t as TemplateJson).type,
          t.executor_class ?? '',
          ...(flags.all ? [t.deletion_time === null ? '' : 'yes'] : []),
        ]),
      );
    });
  });
}

function readSpecs(file: string): Record<string, unknown>[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw usageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw usageError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  for (const item of list) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw usageError(`${file}: a template must be a JSON object`);
  }
  return list as Record<string, unknown>[];
}
