/**
 * The UFDL dashboard (served at /ui/ by the embedded server): log in with a user of the server,
 * then jobs, nodes and templates. Built with Preact by `npm run build` into dist/ui/.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, type Session } from './api.js';
import { JobPage } from './pages/job.js';
import { JobsPage } from './pages/jobs.js';
import { LoginPage } from './pages/login.js';
import { NodesPage } from './pages/nodes.js';
import { TemplatePage } from './pages/template.js';
import { TemplatesPage } from './pages/templates.js';
import { useRoute, type Route } from './router.js';

function App() {
  const [session, setSession] = useState<Session | null>(api.session);
  useEffect(() => api.onSession(setSession), []);
  const route = useRoute();
  useEffect(() => {
    document.title = `${titleOf(route)} · UFDL`;
  }, [route]);
  if (!session) return <LoginPage />;
  return (
    <>
      <header class="top">
        <h1>UFDL</h1>
        <nav aria-label="Main">
          <NavLink href="#/jobs" current={route.page === 'jobs' || route.page === 'job'}>Jobs</NavLink>
          <NavLink href="#/nodes" current={route.page === 'nodes'}>Nodes</NavLink>
          <NavLink href="#/templates" current={route.page === 'templates' || route.page === 'template'}>Templates</NavLink>
        </nav>
        <div class="who">
          <span>
            {session.username}
            {session.isAdmin ? ' (admin)' : ''}
          </span>
          <button type="button" class="secondary" onClick={() => api.logout()}>
            Log out
          </button>
        </div>
      </header>
      <main>
        <Page route={route} session={session} />
      </main>
    </>
  );
}

function Page({ route, session }: { route: Route; session: Session }) {
  switch (route.page) {
    case 'jobs':
      return <JobsPage />;
    case 'job':
      return <JobPage key={route.pk} pk={route.pk} session={session} />;
    case 'nodes':
      return <NodesPage />;
    case 'templates':
      return <TemplatesPage />;
    case 'template':
      return <TemplatePage key={route.pk} pk={route.pk} />;
  }
}

function NavLink({ href, current, children }: { href: string; current: boolean; children: string }) {
  return (
    <a href={href} aria-current={current ? 'page' : undefined}>
      {children}
    </a>
  );
}

function titleOf(route: Route): string {
  switch (route.page) {
    case 'job':
      return `Job ${route.pk}`;
    case 'template':
      return `Template ${route.pk}`;
    default:
      return route.page.charAt(0).toUpperCase() + route.page.slice(1);
  }
}

render(<App />, document.getElementById('app')!);
