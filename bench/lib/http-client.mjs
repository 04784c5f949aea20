// A minimal keep-alive HTTP client for load generation: node:http with a pooled agent, so the
// generator spends its CPU on requests rather than on a heavier client's machinery.
//
// `localAddress`: the source address of its connections (a generator spreads itself over several
// loopback addresses, each with ephemeral ports of its own); `request.destroy()` closes its sockets.
import http from 'node:http';

export function createClient(baseUrl, { maxSockets = 64, localAddress } = {}) {
  const url = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  function request(method, path, { headers = {}, body } = {}) {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method,
          path,
          agent,
          localAddress,
          headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }
  request.destroy = () => agent.destroy();
  return request;
}
