/** The job templates; each opens its page with the form that submits a job from it. */
import { useEffect, useState } from 'preact/hooks';
import type { TemplateJson } from '../../protocol/wire.js';
import { api } from '../api.js';
import { LoadError } from '../components/bits.js';

export function TemplatesPage() {
  const [templates, setTemplates] = useState<TemplateJson[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api.call<TemplateJson[]>('POST', '/v1/job-templates/list', { json: { order_by: [{ field: 'name' }, { field: 'version', ascending: false }] } }).then(setTemplates, setError);
  }, []);
  return (
    <section class="panel" aria-labelledby="templates-title">
      <h2 id="templates-title">Templates</h2>
      <LoadError error={error} />
      {templates && (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th class="num">Version</th>
              <th>Type</th>
              <th>Executor</th>
              <th>Description</th>
            </tr>
          </thead>
          <tbody>
            {templates.map((t) => (
              <tr key={t.pk}>
                <td>
                  <a href={`#/templates/${t.pk}`}>{t.name}</a>
                </td>
                <td class="num">{t.version}</td>
                <td>{t.type}</td>
                <td>{t.executor_class}</td>
                <td>{t.description}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
