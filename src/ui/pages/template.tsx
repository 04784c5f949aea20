/**
 * A template and the form that submits a job from it, built from its parameters (those that are not
 * `const`) and inputs: a field per value, typed after its declared type (numbers, a checkbox for
 * `bool`, JSON for structured types), defaults filled in. The server's refusal is shown beside the
 * field it names; the created job opens at once.
 */
import { useEffect, useState } from 'preact/hooks';
import type { JobJson, TemplateJson, TypedValue } from '../../protocol/wire.js';
import { api, ApiError } from '../api.js';
import { LoadError } from '../components/bits.js';
import { navigate } from '../router.js';

interface Field {
  kind: 'input' | 'parameter';
  name: string;
  types: string[];
  help: string;
  default?: unknown;
}

type Inputs = Record<string, { types: string[]; help?: string }>;

/** How a type is edited: `number` (int, float), `bool`, `json` (JSON, Array<…>, dicts), else text. */
function editorOf(type: string): 'int' | 'float' | 'bool' | 'json' | 'text' {
  if (type === 'int') return 'int';
  if (type === 'float') return 'float';
  if (type === 'bool') return 'bool';
  if (type === 'str') return 'text';
  if (/^JobOutput</.test(type) || /^PK</.test(type)) return 'int';
  return 'json';
}

function initialText(field: Field, type: string): string {
  if (!Object.hasOwn(field, 'default') || field.default === undefined) return '';
  const editor = editorOf(type);
  if (editor === 'text') return String(field.default);
  if (editor === 'bool') return field.default ? 'true' : 'false';
  return editor === 'json' ? JSON.stringify(field.default, null, 2) : String(field.default);
}

/** The typed value of a field's text, or an error sentence. */
function valueOf(text: string, type: string): { value: unknown } | { error: string } {
  switch (editorOf(type)) {
    case 'int':
      return /^-?\d+$/.test(text.trim()) ? { value: Number(text) } : { error: 'a whole number is needed' };
    case 'float':
      return text.trim() !== '' && Number.isFinite(Number(text)) ? { value: Number(text) } : { error: 'a number is needed' };
    case 'bool':
      return { value: text === 'true' };
    case 'json':
      try {
        return { value: JSON.parse(text) as unknown };
      } catch (err) {
        return { error: `not valid JSON (${(err as Error).message})` };
      }
    case 'text':
      return { value: text };
  }
}

export function TemplatePage({ pk }: { pk: number }) {
  const [template, setTemplate] = useState<TemplateJson | null>(null);
  const [fields, setFields] = useState<Field[]>([]);
  const [texts, setTexts] = useState<Record<string, string>>({});
  const [types, setTypes] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [description, setDescription] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    Promise.all([api.call<TemplateJson>('GET', `/v1/job-templates/${pk}`), api.call<Inputs>('GET', `/v1/job-templates/${pk}/get-inputs`).catch(() => ({}) as Inputs)]).then(([t, inputs]) => {
      const list: Field[] = [
        ...Object.entries(inputs).map(([name, input]) => ({ kind: 'input' as const, name, types: input.types, help: input.help ?? '' })),
        ...Object.entries(t.parameters)
          .filter(([, p]) => !p.const)
          .map(([name, p]) => ({ kind: 'parameter' as const, name, types: p.types, help: p.help, ...(Object.hasOwn(p, 'default') ? { default: p.default } : {}) })),
      ];
      setTemplate(t);
      setFields(list);
      setTypes(Object.fromEntries(list.map((f) => [key(f), f.types[0]!])));
      setTexts(Object.fromEntries(list.map((f) => [key(f), initialText(f, f.types[0]!)])));
    }, setError);
  }, [pk]);

  const submit = async (event: Event) => {
    event.preventDefault();
    const problems: Record<string, string> = {};
    const body = { input_values: {} as Record<string, TypedValue>, parameter_values: {} as Record<string, TypedValue>, description };
    for (const field of fields) {
      const k = key(field);
      const text = texts[k] ?? '';
      // A parameter left at its default is not sent: the template's default applies.
      if (field.kind === 'parameter' && Object.hasOwn(field, 'default') && text === initialText(field, types[k]!)) continue;
      const parsed = valueOf(text, types[k]!);
      if ('error' in parsed) problems[k] = parsed.error;
      else (field.kind === 'input' ? body.input_values : body.parameter_values)[field.name] = { value: parsed.value, type: types[k]! };
    }
    setErrors(problems);
    setFormError(null);
    if (Object.keys(problems).length > 0) return;
    setBusy(true);
    try {
      const job = await api.call<JobJson>('POST', `/v1/job-templates/${pk}/create-job`, { json: body });
      navigate(`#/jobs/${job.pk}`);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      // Beside the field the server names, else above the form.
      const named = fields.find((f) => detail.includes(`'${f.name}'`) || detail.startsWith(`${f.name} `));
      if (named && err instanceof ApiError) setErrors({ [key(named)]: detail });
      else setFormError(detail);
    } finally {
      setBusy(false);
    }
  };

  if (!template) return <LoadError error={error} />;
  return (
    <section class="panel" aria-labelledby="template-title">
      <h2 id="template-title">
        {template.name} <span class="muted">v{template.version}</span>
      </h2>
      <p>{template.description}</p>
      <p class="muted">
        {template.type} · {template.executor_class}
      </p>
      <h3>Submit a job</h3>
      <form class="submit" onSubmit={submit} noValidate>
        {fields.map((field) => {
          const k = key(field);
          const id = `field-${k}`;
          const type = types[k]!;
          const editor = editorOf(type);
          const set = (value: string) => setTexts({ ...texts, [k]: value });
          const described = [field.help ? `${id}-help` : '', errors[k] ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
          return (
            <div class="field" key={k}>
              <label for={id}>
                {field.name} <span class="muted">({field.kind}{Object.hasOwn(field, 'default') ? '' : ', required'})</span>
              </label>
              {field.types.length > 1 && (
                <select aria-label={`Type of ${field.name}`} value={type} onChange={(e) => setTypes({ ...types, [k]: (e.target as HTMLSelectElement).value })}>
                  {field.types.map((t) => (
                    <option value={t}>{t}</option>
                  ))}
                </select>
              )}
              {editor === 'bool' ? (
                <input id={id} type="checkbox" checked={texts[k] === 'true'} aria-describedby={described} onChange={(e) => set((e.target as HTMLInputElement).checked ? 'true' : 'false')} />
              ) : editor === 'json' ? (
                <textarea id={id} value={texts[k]} aria-describedby={described} aria-invalid={errors[k] ? true : undefined} onInput={(e) => set((e.target as HTMLTextAreaElement).value)} />
              ) : editor === 'text' ? (
                <input id={id} type="text" value={texts[k]} aria-describedby={described} aria-invalid={errors[k] ? true : undefined} onInput={(e) => set((e.target as HTMLInputElement).value)} />
              ) : (
                <input
                  id={id}
                  type="number"
                  step={editor === 'int' ? '1' : 'any'}
                  value={texts[k]}
                  aria-describedby={described}
                  aria-invalid={errors[k] ? true : undefined}
                  onInput={(e) => set((e.target as HTMLInputElement).value)}
                />
              )}
              {field.help && (
                <span class="help" id={`${id}-help`}>
                  {field.help} <span class="muted">[{type}]</span>
                </span>
              )}
              {errors[k] && (
                <span class="field-error" id={`${id}-error`} role="alert">
                  {errors[k]}
                </span>
              )}
            </div>
          );
        })}
        <div class="field">
          <label for="field-description">Description</label>
          <input id="field-description" value={description} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />
        </div>
        {formError && (
          <p class="error" role="alert">
            {formError}
          </p>
        )}
        <div>
          <button type="submit" disabled={busy}>
            Submit job
          </button>
        </div>
      </form>
    </section>
  );
}

function key(field: Field): string {
  return `${field.kind}-${field.name}`;
}
