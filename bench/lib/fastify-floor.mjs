// The framework floor: fastify with no work behind its routes, answering the lifecycle's requests
// (bench/lifecycle.bench.mjs, --floor) on the same paths and methods as the API, with a job body of
// the size ours sends (~300 bytes, serialized by fastify as ours is) and its default JSON parser.
// What it costs above bare node:http is what the framework itself costs; what ours costs above it is
// the server's own work (identity, the store, group commit, events).
import Fastify from 'fastify';

const app = Fastify({ logger: false });
const job = {
  pk: 1,
  template: { pk: 1, name: 'bench-noop', version: 1 },
  parent: null,
  start_time: '2026-12-06T19:50:29.192Z',
  end_time: null,
  error_reason: null,
  input_values: {},
  parameter_values: {},
  node: 1,
  outputs: [],
  description: 'bench',
  is_cancelled: false,
  creator: 1,
  creation_time: '2026-12-06T19:50:29.166Z',
  deletion_time: null,
};
// An output upload's body is read and dropped, as bare-server.mjs does.
app.addContentTypeParser('application/data', (_request, payload, done) => {
  payload.on('data', () => {});
  payload.on('end', () => done(null, null));
});
const answer = async () => job;
app.post('/v1/job-templates/:pk/create-job', answer);
app.get('/v1/jobs/:pk/acquire', answer);
app.post('/v1/jobs/:pk/start', answer);
app.post('/v1/jobs/:pk/progress/:progress', answer);
app.post('/v1/jobs/:pk/outputs/:name/:type', answer);
app.post('/v1/jobs/:pk/finish', answer);
app.server.keepAliveTimeout = 60_000;
await app.listen({ port: 0, host: '127.0.0.1' });
process.send({ port: app.server.address().port });
process.on('message', (m) => {
  if (m === 'stop') app.close().then(() => process.exit(0));
});
