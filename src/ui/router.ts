/** Hash routes (`#/jobs/42`): the server serves one page, and a reload keeps the place. */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'jobs' }
  | { page: 'job'; pk: number }
  | { page: 'nodes' }
  | { page: 'templates' }
  | { page: 'template'; pk: number };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  const pk = Number(parts[1]);
  if (parts[0] === 'jobs' && Number.isSafeInteger(pk) && pk > 0) return { page: 'job', pk };
  if (parts[0] === 'nodes') return { page: 'nodes' };
  if (parts[0] === 'templates' && Number.isSafeInteger(pk) && pk > 0) return { page: 'template', pk };
  if (parts[0] === 'templates') return { page: 'templates' };
  return { page: 'jobs' };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function navigate(hash: string): void {
  location.hash = hash;
}
