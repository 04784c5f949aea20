// The baseline: a bare node:http server that reads each request body and answers a small JSON body.
import http from 'node:http';

const body = JSON.stringify({ pk: 1, ok: true });
const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (m) => {
  if (m === 'stop') server.close(() => process.exit(0));
});
