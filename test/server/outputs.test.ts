/**
 * Job outputs: upload and download byte-identical and streamed,
 * the size limit, path tricks in names, the phase rules (417/406/400), and B5/B6/B12.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { INLINE_MAX_BYTES } from '../../src/server/blobs.js';
import { startWithFixtures, type Fixtures } from '../helpers/fixtures.js';

const UPLOAD_HEADERS = { 'content-disposition': 'attachment; filename=out', 'content-type': 'application/data' };

async function startedJob(options: Parameters<typeof startWithFixtures>[0] = {}): Promise<{ f: Fixtures; node: number; job: number }> {
  const f = await startWithFixtures(options);
  const node = f.node();
  const job = f.job();
  await f.startAs(node, job);
  return { f, node, job };
}

function upload(f: Fixtures, job: number, node: number | undefined, name: string, type: string, body: BodyInit | undefined, headers: Record<string, string> = UPLOAD_HEADERS) {
  return f.call('POST', `/v1/jobs/${job}/outputs/${encodeURIComponent(name)}/${encodeURIComponent(type)}`, {
    ...(node === undefined ? {} : { node }),
    ...(body === undefined ? {} : { body }),
    headers,
  });
}

/** A raw HTTP request, so that paths reach the server exactly as written (fetch normalises `..`). */
function rawRequest(url: string, method: string, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const req = httpRequest({ hostname, port, method, path, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('upload and download', () => {
  it('round-trips a few MiB byte-identical, streamed in both directions, stored content-addressed', async () => {
    const { f, node, job } = await startedJob();
    const data = randomBytes(3 * 1024 * 1024 + 17);
    // A streamed request body (chunked, no Content-Length).
    const chunks = Array.from({ length: 48 }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536)).filter((c) => c.length > 0);
    chunks.push(data.subarray(48 * 65536));
    const res = await fetch(`${f.url}/v1/jobs/${job}/outputs/model/Model%3CX%3E`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await f.adminToken()}`, 'node-id': String(node), ...UPLOAD_HEADERS },
      body: Readable.toWeb(Readable.from(chunks)) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(200);
    const output = (await res.json()) as { pk: number };
    expect(output).toMatchObject({ job, name: 'model', type: 'Model<X>', creator: 1, deletion_time: null });

    const stored = join(f.server.dataDir, 'outputs', sha256(data).slice(0, 3), sha256(data).slice(3, 6), sha256(data));
    expect(sha256(await readFile(stored))).toBe(sha256(data));

    const get = await fetch(`${f.url}/v1/jobs/${job}/outputs/model/Model%3CX%3E`, { headers: { authorization: `Bearer ${await f.adminToken()}` } });
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('application/data');
    expect(get.headers.get('content-length')).toBe(String(data.length));
    expect(get.headers.get('content-disposition')).toBeNull();
    expect(sha256(new Uint8Array(await get.arrayBuffer()))).toBe(sha256(data));

    const download = await fetch(`${f.url}/v1/job-outputs/${output.pk}/download`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await f.adminToken()}` },
    });
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toBe('attachment; filename="model.Model<X>"');
    expect(sha256(new Uint8Array(await download.arrayBuffer()))).toBe(sha256(data));
  });

  it('keeps outputs up to 64 KiB in the database and larger ones in files, serving both byte-identical', async () => {
    const { f, node, job } = await startedJob();
    const small = randomBytes(INLINE_MAX_BYTES);
    const large = randomBytes(INLINE_MAX_BYTES + 1);
    expect((await upload(f, job, node, 'small', 'BLOB', small)).status).toBe(200);
    expect((await upload(f, job, node, 'large', 'BLOB', large)).status).toBe(200);
    const stored = (data: Buffer) => f.db.prepare('SELECT size, content FROM blobs WHERE sha256 = ?').get(sha256(data)) as { size: number; content: Buffer | null };
    expect(stored(small)).toEqual({ size: small.length, content: small });
    expect(stored(large)).toEqual({ size: large.length, content: null });
    const files = (await filesUnder(join(f.server.dataDir, 'outputs'))).map((file) => file.split('/').at(-1));
    expect(files).toEqual([sha256(large)]);
    for (const [name, data] of [['small', small], ['large', large]] as const) {
      const get = await fetch(`${f.url}/v1/jobs/${job}/outputs/${name}/BLOB`, { headers: { authorization: `Bearer ${await f.adminToken()}` } });
      expect(get.headers.get('content-length')).toBe(String(data.length));
      expect(sha256(new Uint8Array(await get.arrayBuffer()))).toBe(sha256(data));
    }
  });

  it('B12: accepts a zero-byte output, with or without a Content-Type', async () => {
    const { f, node, job } = await startedJob();
    const empty = await upload(f, job, node, 'empty', 'BLOB', new Uint8Array(0));
    expect(empty.status).toBe(200);
    const noBody = await upload(f, job, node, 'nobody', 'BLOB', undefined, { 'content-disposition': 'attachment; filename=x' });
    expect(noBody.status).toBe(200);
    const get = await f.call('GET', `/v1/jobs/${job}/outputs/empty/BLOB`);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-length')).toBe('0');
    expect(get.text).toBe('');
  });

  it('takes any body content type, JSON included, as raw bytes', async () => {
    const { f, node, job } = await startedJob();
    const json = '{"not": "parsed"';
    const res = await upload(f, job, node, 'data', 'JSON', json, { ...UPLOAD_HEADERS, 'content-type': 'application/json' });
    expect(res.status).toBe(200);
    expect((await f.call('GET', `/v1/jobs/${job}/outputs/data/JSON`)).text).toBe(json);
  });

  it('lists live outputs in the job JSON', async () => {
    const { f, node, job } = await startedJob();
    const a = await upload(f, job, node, 'a', 'BLOB', 'a');
    const b = await upload(f, job, node, 'a', 'JSON', 'b');
    const body = (await f.call('GET', `/v1/jobs/${job}`)).body;
    expect(body.outputs).toEqual([
      { pk: a.body.pk, name: 'a', type: 'BLOB' },
      { pk: b.body.pk, name: 'a', type: 'JSON' },
    ]);
  });
});

describe('upload rules', () => {
  it('a client that disconnects mid-upload leaves no output and no partial file, and the server carries on', async () => {
    const { f, node, job } = await startedJob();
    const { hostname, port } = new URL(f.url);
    const req = httpRequest({
      hostname,
      port,
      method: 'POST',
      path: `/v1/jobs/${job}/outputs/cut/BLOB`,
      headers: { authorization: `Bearer ${await f.adminToken()}`, 'node-id': String(node), ...UPLOAD_HEADERS, 'content-length': '1000000' },
    });
    req.on('error', () => {});
    req.write(randomBytes(100_000));
    // Let the server start storing, then vanish.
    await new Promise((resolve) => setTimeout(resolve, 300));
    req.destroy();
    const deadline = Date.now() + 10_000;
    while ((await filesUnder(join(f.server.dataDir, 'outputs'))).length > 0) {
      if (Date.now() > deadline) throw new Error('the partial upload was not cleaned up');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(f.db.prepare('SELECT COUNT(*) AS n FROM outputs').get()).toEqual({ n: 0 });
    expect((await upload(f, job, node, 'cut', 'BLOB', 'whole')).status).toBe(200);
  });

  it('refuses more than maxOutputBytes with 413 and stores nothing, whether or not the length is declared', async () => {
    const { f, node, job } = await startedJob({ maxOutputBytes: 1024 });
    const declared = await upload(f, job, node, 'big', 'BLOB', randomBytes(64 * 1024));
    expect(declared.status).toBe(413);
    expect(declared.body.detail).toBe('Output exceeds the maximum size of 1024 bytes (server option maxOutputBytes)');
    const streamed = await fetch(`${f.url}/v1/jobs/${job}/outputs/big/BLOB`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await f.adminToken()}`, 'node-id': String(node), ...UPLOAD_HEADERS },
      body: Readable.toWeb(Readable.from([randomBytes(800), randomBytes(800)])) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(((await streamed.json()) as { detail: string }).detail).toMatch(/maximum size of 1024 bytes/);
    expect(f.db.prepare('SELECT COUNT(*) AS n FROM outputs').get()).toEqual({ n: 0 });
    expect(await filesUnder(join(f.server.dataDir, 'outputs'))).toEqual([]);
    // Exactly the maximum is fine, and the server still serves.
    expect((await upload(f, job, node, 'max', 'BLOB', randomBytes(1024))).status).toBe(200);
  });

  it('needs a Content-Disposition filename (400)', async () => {
    const { f, node, job } = await startedJob();
    for (const headers of <Array<Record<string, string>>>[{ 'content-type': 'application/data' }, { 'content-disposition': 'attachment' }]) {
      const res = await upload(f, job, node, 'x', 'BLOB', 'x', headers);
      expect(res.status).toBe(400);
      expect(res.body.detail).toBe('Missing filename. Request should include a Content-Disposition header with a filename parameter.');
    }
  });

  it('is 417 before the job started and 406 once it finished', async () => {
    const f = await startWithFixtures();
    const node = f.node();
    const job = f.job();
    await f.call('GET', `/v1/jobs/${job}/acquire`, { node });
    const early = await upload(f, job, node, 'x', 'BLOB', 'x');
    expect(early.status).toBe(417);
    expect(early.body.detail).toBe('Attempted to perform the following action on an un-started job: add_output');
    await f.call('POST', `/v1/jobs/${job}/start`, { node, json: {} });
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: {} });
    const late = await upload(f, job, node, 'x', 'BLOB', 'x');
    expect(late.status).toBe(406);
    expect(late.body.detail).toBe('Attempted to perform the following action on a finished job: add_output');
  });

  it('is allowed while ERRORED and CANCELLED', async () => {
    const { f, node, job } = await startedJob();
    await f.call('DELETE', `/v1/jobs/${job}/cancel`);
    expect((await upload(f, job, node, 'log', 'BLOB', 'x')).status).toBe(200);
    const other = f.job();
    const node2 = f.node();
    await f.startAs(node2, other);
    await f.call('POST', `/v1/jobs/${other}/finish`, { node: node2, json: { error: 'x' } });
    expect((await upload(f, other, node2, 'log', 'BLOB', 'x')).status).toBe(200);
  });

  it('refuses a duplicate of a live output (400) but the same name with another type is fine', async () => {
    const { f, node, job } = await startedJob();
    expect((await upload(f, job, node, 'log', 'BLOB', '1')).status).toBe(200);
    const dup = await upload(f, job, node, 'log', 'BLOB', '2');
    expect(dup.status).toBe(400);
    expect(dup.body.detail).toBe("Bad name 'log': Job already has an output by this name/type (log/BLOB)");
    expect((await upload(f, job, node, 'log', 'Compressed<JSON, 8>', '3')).status).toBe(200);
  });

  it('takes names and types of the longest allowed length in any script, on every store', async () => {
    const { f, node, job } = await startedJob();
    // Random CJK characters (three bytes each in UTF-8, incompressible): 200 of them for the name,
    // 1,000 for the type, more than a PostgreSQL index entry can hold together.
    const cjk = (n: number) => Array.from(randomBytes(2 * n).subarray(0, n), (b, i) => String.fromCharCode(0x4e00 + ((b << 6) ^ (i * 37)) % 20000)).join('');
    const [name, type] = [cjk(200), cjk(1000)];
    const res = await upload(f, job, node, name, type, 'x');
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ name, type });
    const info = await f.call('GET', `/v1/jobs/${job}/outputs/${encodeURIComponent(name)}/${encodeURIComponent(type)}/info`);
    expect(info.body.pk).toBe(res.body.pk);
    expect((await upload(f, job, node, name, type, 'y')).status).toBe(400);
  });

  it('B5: after reset, the re-run uploads outputs of the same name again; the old ones are gone from the job', async () => {
    const { f, node, job } = await startedJob();
    await upload(f, job, node, 'log', 'BLOB', 'first run');
    await f.call('POST', `/v1/jobs/${job}/finish`, { node, json: { error: 'x' } });
    const reset = await f.call('DELETE', `/v1/jobs/${job}/reset`, { node });
    expect(reset.body.outputs).toEqual([]);
    await f.call('POST', `/v1/jobs/${job}/start`, { node, json: {} });
    const again = await upload(f, job, node, 'log', 'BLOB', 'second run');
    expect(again.status).toBe(200);
    expect((await f.call('GET', `/v1/jobs/${job}/outputs/log/BLOB`)).text).toBe('second run');
    expect((await f.call('GET', `/v1/jobs/${job}`)).body.outputs).toEqual([{ pk: again.body.pk, name: 'log', type: 'BLOB' }]);
  });

  it('B5: after abort, outputs are set aside and the next holder can upload the same names', async () => {
    const { f, node, job } = await startedJob();
    await upload(f, job, node, 'log', 'BLOB', 'run 1');
    await f.call('DELETE', `/v1/jobs/${job}/abort`);
    const node2 = f.node();
    await f.startAs(node2, job);
    expect((await upload(f, job, node2, 'log', 'BLOB', 'run 2')).status).toBe(200);
    expect((await f.call('GET', `/v1/jobs/${job}/outputs/log/BLOB`)).text).toBe('run 2');
  });

  it('B6: a deleted output does not block re-uploading the same name and type', async () => {
    const { f, node, job } = await startedJob();
    const first = await upload(f, job, node, 'log', 'BLOB', 'v1');
    const del = await f.call('DELETE', `/v1/jobs/${job}/outputs/log/BLOB`);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ pk: first.body.pk, name: 'log', type: 'BLOB' });
    expect(del.body.deletion_time).toEqual(expect.any(String));
    // Still readable until replaced (soft delete), and not listed on the job.
    expect((await f.call('GET', `/v1/jobs/${job}/outputs/log/BLOB`)).text).toBe('v1');
    expect((await f.call('GET', `/v1/jobs/${job}`)).body.outputs).toEqual([]);
    expect((await upload(f, job, node, 'log', 'BLOB', 'v2')).status).toBe(200);
    expect((await f.call('GET', `/v1/jobs/${job}/outputs/log/BLOB`)).text).toBe('v2');
    // Reinstating the old one now would make two live outputs: refused.
    const reinstate = await f.call('DELETE', `/v1/job-outputs/${first.body.pk}/reinstate`);
    expect(reinstate.status).toBe(400);
  });

  it('is allowed to an admin and the holding node only (403), and needs a user (401)', async () => {
    const { f, job } = await startedJob();
    const user = await f.user();
    const usersNode = f.node(user.pk);
    expect((await f.call('POST', `/v1/jobs/${job}/outputs/x/BLOB`, { as: user, node: usersNode, body: 'x', headers: UPLOAD_HEADERS })).status).toBe(403);
    expect((await f.call('POST', `/v1/jobs/${job}/outputs/x/BLOB`, { as: user, body: 'x', headers: UPLOAD_HEADERS })).status).toBe(403);
    expect((await f.call('POST', `/v1/jobs/${job}/outputs/x/BLOB`, { as: null, body: 'x', headers: UPLOAD_HEADERS })).status).toBe(401);
    // An admin without a node may add outputs.
    expect((await f.call('POST', `/v1/jobs/${job}/outputs/x/BLOB`, { body: 'x', headers: UPLOAD_HEADERS })).status).toBe(200);
    expect((await f.call('POST', `/v1/jobs/9999/outputs/x/BLOB`, { body: 'x', headers: UPLOAD_HEADERS })).status).toBe(404);
  });
});

describe('path tricks in output names and types', () => {
  it('rejects encoded slashes, NUL, `.`/`..` and control characters with 400 and writes nothing outside the data dir', async () => {
    const { f, node, job } = await startedJob();
    const token = await f.adminToken();
    const headers = { authorization: `Bearer ${token}`, 'node-id': String(node), ...UPLOAD_HEADERS };
    const tricks = [
      `/v1/jobs/${job}/outputs/..%2F..%2Fescape/BLOB`,
      `/v1/jobs/${job}/outputs/%2E%2E/BLOB`,
      `/v1/jobs/${job}/outputs/../BLOB`,
      `/v1/jobs/${job}/outputs/./BLOB`,
      `/v1/jobs/${job}/outputs/a%00b/BLOB`,
      `/v1/jobs/${job}/outputs/a%0D%0Ab/BLOB`,
      `/v1/jobs/${job}/outputs/ok/..`,
      `/v1/jobs/${job}/outputs/ok/a%2Fb`,
      `/v1/jobs/${job}/outputs/a%5C..%5Cb/BLOB`,
      `/v1/jobs/${job}/outputs/${'n'.repeat(201)}/BLOB`,
    ];
    for (const path of tricks) {
      const res = await rawRequest(f.url, 'POST', path, headers, 'payload');
      // `..` as a literal segment may also just miss the route; either way it is a JSON 4xx.
      expect([400, 404], path).toContain(res.status);
      expect(JSON.parse(res.body).detail, path).toEqual(expect.any(String));
      if (res.status === 400) expect(JSON.parse(res.body).detail, path).toMatch(/^Bad output (name|type)/);
    }
    expect(f.db.prepare('SELECT COUNT(*) AS n FROM outputs').get()).toEqual({ n: 0 });
    expect(await filesUnder(join(f.server.dataDir, 'outputs'))).toEqual([]);
    expect(existsSync(join(dirname(f.server.dataDir), 'escape'))).toBe(false);
    // 200 characters is the longest name; long, heavily encoded type strings are fine.
    const longType = "JobOutput<Model<Domain<'Image Classification'>, Framework<'dogs_dummy', '1'>>>".repeat(3);
    expect((await upload(f, job, node, 'n'.repeat(200), longType, 'ok')).status).toBe(200);
    // Quotes, spaces, angle brackets and non-ASCII are fine: one URL segment each.
    const fancy = await upload(f, job, node, 'my "model" ü 模型', "Compressed<JSON, 8>", 'ok');
    expect(fancy.status).toBe(200);
    const download = await f.call('POST', `/v1/job-outputs/${fancy.body.pk}/download`);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toBe(
      `attachment; filename="my _model_ _ __.Compressed<JSON, 8>"; filename*=UTF-8''${encodeURIComponent('my "model" ü 模型.Compressed<JSON, 8>')}`,
    );
  });
});

describe('get, info and delete by name and type', () => {
  it('Get Output honours Accept: 406 when it excludes application/data', async () => {
    const { f, node, job } = await startedJob();
    await upload(f, job, node, 'log', 'BLOB', 'x');
    const path = `/v1/jobs/${job}/outputs/log/BLOB`;
    for (const accept of ['*/*', 'application/*', 'application/data', 'text/html, application/data;q=0.5']) {
      expect((await f.call('GET', path, { headers: { accept } })).status, accept).toBe(200);
    }
    for (const accept of ['application/json', 'text/html', 'application/data;q=0']) {
      const res = await f.call('GET', path, { headers: { accept } });
      expect(res.status, accept).toBe(406);
      expect(res.body).toEqual({ detail: 'Could not satisfy the request Accept header.' });
    }
  });

  it('HEAD on Get Output gives the headers without the bytes', async () => {
    const { f, node, job } = await startedJob();
    await upload(f, job, node, 'log', 'BLOB', 'twelve bytes');
    const res = await f.call('HEAD', `/v1/jobs/${job}/outputs/log/BLOB`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('12');
    expect(res.text).toBe('');
    expect((await f.call('GET', `/v1/jobs/${job}/outputs/log/BLOB`)).text).toBe('twelve bytes');
  });

  it('info returns the output JSON; unknown outputs are 400 and unknown jobs 404 on get, info and delete', async () => {
    const { f, node, job } = await startedJob();
    const added = await upload(f, job, node, 'log', 'BLOB', 'x');
    const info = await f.call('GET', `/v1/jobs/${job}/outputs/log/BLOB/info`);
    expect(info.status).toBe(200);
    expect(Object.keys(info.body)).toEqual(['pk', 'job', 'name', 'type', 'creator', 'creation_time', 'deletion_time']);
    expect(info.body).toEqual(added.body);
    for (const [method, suffix] of [['GET', ''], ['GET', '/info'], ['DELETE', '']] as const) {
      const unknown = await f.call(method, `/v1/jobs/${job}/outputs/nope/BLOB${suffix}`);
      expect(unknown.status).toBe(400);
      expect(unknown.body.detail).toBe("Bad name 'nope': Job has no output by this name/type (nope/BLOB)");
      expect((await f.call(method, `/v1/jobs/9999/outputs/log/BLOB${suffix}`)).status).toBe(404);
    }
    expect((await f.call('GET', `/v1/jobs/${job}/outputs/log/BLOB`, { as: null })).status).toBe(401);
  });

  it('delete is admin only', async () => {
    const { f, job } = await startedJob();
    const user = await f.user();
    await upload(f, job, undefined, 'log', 'BLOB', 'x');
    expect((await f.call('DELETE', `/v1/jobs/${job}/outputs/log/BLOB`, { as: user })).status).toBe(403);
    expect((await f.call('GET', `/v1/jobs/${job}/outputs/log/BLOB/info`)).body.deletion_time).toBeNull();
  });
});

describe('/v1/job-outputs', () => {
  it('lists with filters, hides deleted and reset-removed outputs unless include_inactive', async () => {
    const { f, node, job } = await startedJob();
    const log = await upload(f, job, node, 'log', 'BLOB', 'x');
    const model = await upload(f, job, node, 'model', 'BLOB', 'y');
    const gone = await upload(f, job, node, 'gone', 'BLOB', 'z');
    await f.call('DELETE', `/v1/job-outputs/${gone.body.pk}`);
    const all = await f.call('POST', '/v1/job-outputs/list', { json: {} });
    expect(all.body.map((o: { pk: number }) => o.pk)).toEqual([log.body.pk, model.body.pk]);
    const byName = await f.call('POST', '/v1/job-outputs/list', {
      json: { expressions: [{ type: 'exact', field: 'name', value: 'model' }, { type: 'exact', field: 'job', value: job }] },
    });
    expect(byName.body).toEqual([model.body]);
    const inactive = await f.call('POST', '/v1/job-outputs/list', { json: { include_inactive: true, order_by: [{ field: 'name' }] } });
    expect(inactive.body.map((o: { name: string }) => o.name)).toEqual(['gone', 'log', 'model']);
    expect((await f.call('POST', '/v1/job-outputs/list', { json: { expressions: [{ type: 'isnull', field: 'size_x' }] } })).status).toBe(400);
    expect((await f.call('POST', '/v1/job-outputs/list', { as: null, json: {} })).status).toBe(401);
  });

  it('retrieves, soft-deletes (204), reinstates and hard-deletes (pk null) by pk; admin only for changes', async () => {
    const { f, node, job } = await startedJob();
    const user = await f.user();
    const out = (await upload(f, job, node, 'log', 'BLOB', 'x')).body;
    expect((await f.call('GET', `/v1/job-outputs/${out.pk}`, { as: user })).body).toEqual(out);
    expect((await f.call('GET', '/v1/job-outputs/9999')).status).toBe(404);
    expect((await f.call('DELETE', `/v1/job-outputs/${out.pk}`, { as: user })).status).toBe(403);
    const del = await f.call('DELETE', `/v1/job-outputs/${out.pk}`);
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    expect((await f.call('GET', `/v1/job-outputs/${out.pk}`)).body.deletion_time).toEqual(expect.any(String));
    expect((await f.call('DELETE', `/v1/job-outputs/${out.pk}/reinstate`)).body.deletion_time).toBeNull();
    expect((await f.call('DELETE', `/v1/job-outputs/${out.pk}/hard`, { as: user })).status).toBe(403);
    const hard = await f.call('DELETE', `/v1/job-outputs/${out.pk}/hard`);
    expect(hard.status).toBe(200);
    expect(hard.body).toEqual({ ...out, pk: null });
    expect((await f.call('GET', `/v1/job-outputs/${out.pk}`)).status).toBe(404);
  });

  it('download names the file after the requested filetype, and refuses bad bodies and unknown pks', async () => {
    const { f, node, job } = await startedJob();
    const out = (await upload(f, job, node, 'log', 'Compressed<JSON, 8>', 'zipped')).body;
    const plain = await f.call('POST', `/v1/job-outputs/${out.pk}/download`, { json: {} });
    expect(plain.headers.get('content-disposition')).toBe('attachment; filename="log.Compressed<JSON, 8>"');
    expect(plain.headers.get('content-type')).toBe('application/data');
    expect(plain.text).toBe('zipped');
    const typed = await f.call('POST', `/v1/job-outputs/${out.pk}/download`, { json: { filetype: 'zip', params: {} } });
    expect(typed.headers.get('content-disposition')).toBe('attachment; filename="log.zip"');
    expect((await f.call('POST', `/v1/job-outputs/${out.pk}/download`, { json: { filetype: 3 } })).status).toBe(400);
    expect((await f.call('POST', '/v1/job-outputs/9999/download')).status).toBe(404);
    expect((await f.call('POST', `/v1/job-outputs/${out.pk}/download`, { as: null })).status).toBe(401);
  });

  it('download refuses a filetype that cannot name a file (a lone surrogate, a megabyte) with a 400, not a 500 or a header no client reads', async () => {
    const { f, node, job } = await startedJob();
    const out = (await upload(f, job, node, 'log', 'BLOB', 'bytes')).body;
    // JSON's `\ud800` escape is a lone UTF-16 surrogate: no UTF-8 encoding exists for it.
    for (const body of ['{"filetype": "\\ud800"}', '{"filetype": "zip\\udfff"}', JSON.stringify({ filetype: 'x'.repeat(100_000) })]) {
      const res = await f.call('POST', `/v1/job-outputs/${out.pk}/download`, { body, headers: { 'content-type': 'application/json' } });
      expect(res.status, `${body.slice(0, 40)} → ${res.status} ${res.text.slice(0, 200)}`).toBe(400);
      // The surrogates are refused with every JSON body (json-text.ts), the length by the route.
      expect(res.body.detail).toMatch(/^(Invalid download body: filetype: |The JSON body's field "filetype" holds a lone UTF-16 surrogate)/);
    }
    // The longest filetype allowed still names the file.
    const longest = await f.call('POST', `/v1/job-outputs/${out.pk}/download`, { json: { filetype: 't'.repeat(256) } });
    expect(longest.status).toBe(200);
    expect(longest.headers.get('content-disposition')).toBe(`attachment; filename="log.${'t'.repeat(256)}"`);
  });

  it('forbids create and update (403)', async () => {
    const { f, node, job } = await startedJob();
    const out = (await upload(f, job, node, 'log', 'BLOB', 'x')).body;
    expect((await f.call('POST', '/v1/job-outputs/create', { json: {} })).status).toBe(403);
    expect((await f.call('PATCH', `/v1/job-outputs/${out.pk}`, { json: { name: 'y' } })).status).toBe(403);
  });
});
