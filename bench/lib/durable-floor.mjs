// The durable floor (bench/lifecycle.bench.mjs, --durable-floor): a server doing only what the API's
// contract needs for the lifecycle's requests (lib/durable-work.mjs: the caller's rows, the
// transition, group commit, the job's JSON), in front of it either bare node:http (`http`) or fastify
// used as ours uses it (`fastify`: its router, its JSON body parser, its serializer; no hooks).
//
// What the `http` floor costs above bare node:http is the durable work itself, so floor / bare is as
// close to bare as a durable job server can come on the machine; the `fastify` floor adds the
// framework our server is built on; ours / floor is what our own layers cost.
//
//   argv[2]: JSON { dataDir, nodePks, frontEnd: 'http' | 'fastify' } — the nodes the generator acts
//   as, all registered by user 1, whose token is `x`.
import Fastify from 'fastify';
import http from 'node:http';
import { openDurableWork, Refused } from './durable-work.mjs';

const { dataDir, nodePks, frontEnd = 'http' } = JSON.parse(process.argv[2]);
const work = await openDurableWork({ dataDir, nodePks });

/** Run `act` (the node it acts as → the job); its answer's status and body, once durable. */
function respond(headers, act, send) {
  let status = 200;
  let answer;
  try {
    answer = act(work.caller(headers.authorization, headers['node-id']));
  } catch (err) {
    status = err instanceof Refused ? err.status : 400;
    answer = { message: err.message };
  }
  work.whenDurable(() => send(status, answer));
}

/** The lifecycle's routes: method, path pattern, and the work given the path's values and the body. */
const ROUTES = [
  ['POST', '/v1/job-templates/:pk/create-job', (p, body, node) => work.createJob(Number(p.pk), body, node)],
  ['GET', '/v1/jobs/:pk/acquire', (p, _body, node) => work.acquire(Number(p.pk), node)],
  ['POST', '/v1/jobs/:pk/start', (p, _body, node) => work.start(Number(p.pk), node)],
  ['POST', '/v1/jobs/:pk/progress/:progress', (p, _body, node) => work.progress(Number(p.pk), node, Number(p.progress))],
  ['POST', '/v1/jobs/:pk/outputs/:name/:type', (p, body, node) => work.output(Number(p.pk), node, p.name, p.type, body)],
  ['POST', '/v1/jobs/:pk/finish', (p, body, node) => work.finish(Number(p.pk), node, body.success === true)],
];

let close;
if (frontEnd === 'fastify') {
  const app = Fastify({ logger: false });
  // An output's body arrives whole, as ours reads an upload of this size.
  app.addContentTypeParser('application/data', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  for (const [method, path, run] of ROUTES) {
    app.route({
      method,
      url: path,
      handler(request, reply) {
        respond(request.headers, (node) => run(request.params, request.body, node), (status, answer) => reply.code(status).send(answer));
      },
    });
  }
  app.server.keepAliveTimeout = 60_000;
  await app.listen({ port: 0, host: '127.0.0.1' });
  process.send({ port: app.server.address().port });
  close = () => app.close();
} else {
  // The same routes, matched by hand.
  const patterns = ROUTES.map(([method, path, run]) => {
    const names = [...path.matchAll(/:(\w+)/g)].map((m) => m[1]);
    return { method, regex: new RegExp(`^${path.replace(/:\w+/g, '([^/]+)')}$`), names, run };
  });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const send = (status, answer) => {
        const text = JSON.stringify(answer);
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      respond(req.headers, (node) => {
        const raw = Buffer.concat(chunks);
        for (const { method, regex, names, run } of patterns) {
          const m = req.method === method && regex.exec(req.url);
          if (!m) continue;
          const params = Object.fromEntries(names.map((name, i) => [name, m[i + 1]]));
          return run(params, req.headers['content-type'] === 'application/json' ? JSON.parse(raw.toString('utf8')) : raw, node);
        }
        throw new Refused(404, 'no such route');
      }, send);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((ready) => server.listen(0, '127.0.0.1', ready));
  process.send({ port: server.address().port });
  close = () => new Promise((done) => server.close(done));
}
process.on('message', (m) => {
  if (m === 'stop') close().then(() => work.close()).then(() => process.exit(0));
});
