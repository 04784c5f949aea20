/**
 * The nodes: address, hardware, when each was last heard from, what it runs, whether the server
 * counts it as lost (silent longer than `lost_after`), and its recent jobs on demand.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Capabilities, HardwareJson, NodeJson } from '../../protocol/wire.js';
import { api } from '../api.js';
import { LoadError, StateBadge } from '../components/bits.js';
import { formatAge, formatBytes } from '../format.js';
import type { JobPage } from '../types.js';

export function NodesPage() {
  const [nodes, setNodes] = useState<NodeJson[] | null>(null);
  const [hardware, setHardware] = useState<Map<number, string>>(new Map());
  const [lostAfterS, setLostAfterS] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    const load = () => api.call<NodeJson[]>('POST', '/v1/nodes/list', { json: { order_by: [{ field: 'pk' }] } }).then(setNodes, setError);
    void load();
    api.call<HardwareJson[]>('POST', '/v1/hardware/list', { json: {} }).then((list) => setHardware(new Map(list.map((h) => [h.pk, h.generation]))), () => undefined);
    api.call<Capabilities>('GET', '/v1/ufdl-agent/capabilities').then((c) => setLostAfterS(c.extensions.lost_node?.lost_after_seconds ?? null), () => undefined);
    const timer = window.setInterval(load, 10_000);
    return () => window.clearInterval(timer);
  }, []);
  return (
    <section class="panel" aria-labelledby="nodes-title">
      <h2 id="nodes-title">Nodes</h2>
      <LoadError error={error} />
      {nodes && nodes.length === 0 && <p class="muted">No node has registered yet.</p>}
      {nodes && nodes.length > 0 && (
        <table>
          <thead>
            <tr>
              <th class="num">Node</th>
              <th>Address</th>
              <th>Hardware</th>
              <th>Last seen</th>
              <th>Current job</th>
              <th>Status</th>
              <th>Recent jobs</th>
            </tr>
          </thead>
          <tbody>
            {nodes.map((node) => {
              const silentS = node.last_seen ? (Date.now() - Date.parse(node.last_seen)) / 1000 : Infinity;
              const lost = lostAfterS !== null && silentS > lostAfterS;
              return (
                <tr key={node.pk} data-node={node.pk}>
                  <td class="num">{node.pk}</td>
                  <td>
                    {node.ip} <span class="muted">#{node.index}</span>
                  </td>
                  <td>
                    {node.gpu_mem !== null ? `GPU ${node.hardware_generation !== null ? (hardware.get(node.hardware_generation) ?? '?') : '?'}, ${formatBytes(node.gpu_mem)}` : 'no GPU'}
                    <br />
                    <span class="muted">
                      CPU memory {formatBytes(node.cpu_mem)}
                      {node.driver_version ? `, driver ${node.driver_version}` : ''}
                    </span>
                  </td>
                  <td>{node.last_seen ? formatAge(node.last_seen) : 'never'}</td>
                  <td>{node.current_job !== null ? <a href={`#/jobs/${node.current_job}`}>job {node.current_job}</a> : <span class="muted">idle</span>}</td>
                  <td>{lost ? <span class="badge-lost">lost</span> : 'alive'}</td>
                  <td>
                    <RecentJobs node={node.pk} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function RecentJobs({ node }: { node: number }) {
  const [page, setPage] = useState<JobPage | null>(null);
  return (
    <details onToggle={(e) => (e.target as HTMLDetailsElement).open && !page && api.call<JobPage>('POST', '/v1/ufdl-agent/jobs/table', { json: { node, limit: 5 } }).then(setPage, () => undefined)}>
      <summary>show</summary>
      {page && page.rows.length === 0 && <span class="muted">none</span>}
      <ul>
        {page?.rows.map((job) => (
          <li key={job.pk}>
            <a href={`#/jobs/${job.pk}`}>job {job.pk}</a> {job.template.name} <StateBadge state={job.state} />
          </li>
        ))}
      </ul>
    </details>
  );
}
