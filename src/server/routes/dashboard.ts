/**
 * The web dashboard (an extension, like live logs): the static files built from `src/ui/` into
 * `dist/ui/` at `/ui/`, and the few routes it needs beyond the reference API, under
 * `/v1/ufdl-agent/`: a paged jobs table (`dashboard/job-table.ts`), one job with its output sizes, a
 * live feed of every job's transitions (`dashboard/feed.ts`) and download tickets
 * (`dashboard/tickets.ts`). The pages themselves use the reference API with the user's own token.
 */
import { existsSync } from 'node:fs';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { packagePath } from '../../package-files.js';
import { UfdlError } from '../../protocol/errors.js';
import { registerFeed, FEED_PATH } from '../dashboard/feed.js';
import { jobPage, parseTableQuery, summaryOf } from '../dashboard/job-table.js';
import { DownloadTickets } from '../dashboard/tickets.js';
import { requireUser } from '../identity.js';
import { parsePk } from '../route-params.js';
import { requireJobRow, jobJson, liveOutputs } from '../store/job-json.js';
import { requireOutputRow } from '../store/outputs.js';
import { getUserByPk } from '../store/users.js';
import { sendBlob } from './job-outputs.js';
import { authenticateWatcher, revocationCheck } from './ws.js';

export const DASHBOARD_PATH = '/ui/';
/** `dist/ui/` of the package (vite's build of src/ui). */
const UI_ROOT = packagePath('dist', 'ui');

/** Headers of every dashboard file: nothing from elsewhere may load, and no other site may frame it. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

type PkRequest = FastifyRequest<{ Params: { pk: string } }>;

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.ufdl;
  const tickets = new DownloadTickets(ctx.tokens.derivedKey('ufdl-agent dashboard download tickets'));
  const feed = registerFeed(app);

  if (existsSync(UI_ROOT)) {
    await app.register(fastifyStatic, {
      root: UI_ROOT,
      prefix: DASHBOARD_PATH,
      wildcard: false,
      // `/ui` is served too (the router ignores trailing slashes); the page's URLs are absolute.
      index: ['index.html'],
      // Cache-Control is ours (setHeaders), not the plugin's max-age=0.
      cacheControl: false,
      setHeaders(res, path) {
        for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
        // Bundles carry a content hash in their names; the page itself must always be re-checked.
        res.setHeader('cache-control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  } else {
    app.get(`${DASHBOARD_PATH}*`, async () => {
      throw new UfdlError('UFDL_ERR_SERVER_UNAVAILABLE', `The dashboard is not built (${UI_ROOT} is missing): run 'npm run build'.`);
    });
  }
  app.get('/', async (_request, reply) => reply.redirect(DASHBOARD_PATH));

  app.post('/v1/ufdl-agent/jobs/table', async (request) => {
    requireUser(request);
    return jobPage(ctx.db, parseTableQuery(request.body));
  });

  // One job as the job page shows it: the reference's JSON plus output sizes and who created it.
  app.get('/v1/ufdl-agent/jobs/:pk', async (request: PkRequest) => {
    requireUser(request);
    const row = requireJobRow(ctx.db, parsePk(request.params.pk));
    const outputs = liveOutputs(ctx.db, row.pk);
    return {
      job: jobJson(ctx.db, row, outputs),
      summary: summaryOf(row),
      outputs: outputs.map((o) => ({ pk: o.pk, name: o.name, type: o.type, size: o.size, creation_time: o.creation_time })),
      creator: row.creator === null ? null : (getUserByPk(ctx.db, row.creator)?.username ?? null),
    };
  });

  app.post('/v1/ufdl-agent/outputs/:pk/ticket', async (request: PkRequest) => {
    const user = requireUser(request);
    const output = requireOutputRow(ctx.db, parsePk(request.params.pk));
    const ticket = tickets.issue(output.pk, user.pk);
    return { url: `/v1/ufdl-agent/outputs/${output.pk}/download?ticket=${ticket}` };
  });

  app.get('/v1/ufdl-agent/outputs/:pk/download', async (request: PkRequest, reply) => {
    const pk = parsePk(request.params.pk);
    const ticket = (request.query as Record<string, unknown>).ticket;
    const userPk = typeof ticket === 'string' ? tickets.verify(ticket, pk) : undefined;
    const user = userPk === undefined ? undefined : getUserByPk(ctx.db, userPk);
    if (!user || !user.is_active) {
      throw new UfdlError('UFDL_ERR_AUTH_BAD_TOKEN', 'The download ticket is missing, invalid or expired; open the download link from the dashboard again.');
    }
    const output = requireOutputRow(ctx.db, pk);
    return sendBlob(ctx, reply, output, output.name);
  });

  app.route({
    method: 'GET',
    url: FEED_PATH,
    preHandler: async (request) => {
      if (!request.ws) return;
      if (!(await authenticateWatcher(app, request))) {
        throw new UfdlError('UFDL_ERR_AUTH_MISSING', 'The feed needs a user: send ?token=<access token> or an Authorization header.');
      }
    },
    handler: async () => {
      throw new UfdlError('UFDL_ERR_REQ_BAD_PARAM', `${FEED_PATH} is a web-socket: connect with an Upgrade request`);
    },
    wsHandler: (socket, request) => feed.add(socket, revocationCheck(app.ufdl.db, request.user)),
  });
}
