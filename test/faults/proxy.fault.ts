/**
 * The campaign's TCP proxy (helpers/proxy.ts) does what the partition scenarios rely on, checked
 * against a plain HTTP server: pass forwards, stall holds and then delivers everything, drop loses a
 * connection for good while new ones work after the heal, reset refuses, slow keeps every byte in
 * order.
 */
import { createHash } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sleep } from './helpers/procs.js';
import { TcpProxy } from './helpers/proxy.js';

const BIG = Buffer.alloc(1024 * 1024);
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 31 + (i >> 10)) & 0xff;

let server: Server;
let proxy: TcpProxy;

beforeEach(async () => {
  server = createServer((req, res) => {
    if (req.url === '/big') {
      res.end(BIG);
      return;
    }
    const delay = req.url === '/slow' ? 300 : 0;
    setTimeout(() => res.end(`hello ${req.url}`), delay);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  proxy = await TcpProxy.start({ port: typeof address === 'object' && address ? address.port : 0 });
});

afterEach(async () => {
  await proxy.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

interface Result {
  status?: number;
  body?: Buffer;
  error?: string;
}

function get(path: string, timeoutMs = 5_000): { done: Promise<Result>; settled: () => boolean } {
  let settled = false;
  const done = new Promise<Result>((resolve) => {
    const req = request({ host: '127.0.0.1', port: proxy.port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', (err) => resolve({ error: err.message }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('client timeout')));
    req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
    req.end();
  }).finally(() => {
    settled = true;
  });
  return { done, settled: () => settled };
}

const sha = (b: Buffer | undefined) => createHash('sha256').update(b ?? Buffer.alloc(0)).digest('hex');

describe('the fault campaign TCP proxy', () => {
  it('should forward in pass mode', async () => {
    const res = await get('/a').done;
    expect(res.status).toBe(200);
    expect(res.body?.toString()).toBe('hello /a');
  });

  it('should hold everything while stalled and deliver it once the path heals', async () => {
    proxy.setMode('stall');
    const pending = get('/stalled', 10_000);
    await sleep(500);
    expect(pending.settled()).toBe(false);
    proxy.setMode('pass');
    const res = await pending.done;
    expect(res.status).toBe(200);
    expect(res.body?.toString()).toBe('hello /stalled');
  });

  it('should lose a dropped connection for good, and carry new ones after the heal', async () => {
    proxy.setMode('drop');
    const lost = get('/lost', 1_500);
    await sleep(300);
    proxy.setMode('pass');
    expect((await lost.done).error).toBe('client timeout');
    const res = await get('/after').done;
    expect(res.body?.toString()).toBe('hello /after');
    expect(proxy.stats.droppedBytes).toBeGreaterThan(0);
  });

  it('should reset new and open connections in reset mode', async () => {
    const inFlight = get('/slow');
    await sleep(100);
    proxy.setMode('reset');
    expect((await inFlight.done).error).toBeDefined();
    expect((await get('/refused').done).error).toBeDefined();
    proxy.setMode('pass');
    expect((await get('/back').done).body?.toString()).toBe('hello /back');
  });

  it('should deliver every byte in order when slow', async () => {
    proxy.setMode('slow', 50);
    const res = await get('/big', 30_000).done;
    expect(res.status).toBe(200);
    expect(sha(res.body)).toBe(sha(BIG));
  });
});
