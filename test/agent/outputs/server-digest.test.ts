/**
 * The agent hashes an output as it uploads it, and our server names the SHA-256 of what it stored
 * (`X-UFDL-Output-SHA256`). When the two differ, the server's copy is not this attempt's output: the
 * agent removes it and uploads again, and the job ends with the child's bytes on the server.
 */
import { createHash } from 'node:crypto';
import { createServer, request } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createJob, downloadOutput, ended, importTemplate, recordingLogger, shellTemplate, startTestAgent, waitForJob } from '../../helpers/agent.js';
import { listenOnLoopback } from '../../helpers/loopback.js';
import { startTestServer } from '../../helpers/server.js';
import { tempDir } from '../../helpers/temp-dir.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Flips the first byte of a body (same length, other bytes). */
function flipFirstByte(): Transform {
  let first = true;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (first && chunk.length > 0) {
        first = false;
        chunk = Buffer.from(chunk);
        chunk[0] = chunk[0]! ^ 0xff;
      }
      done(null, chunk);
    },
  });
}

/** A proxy to `target` that corrupts the body of the first upload to a path matching `corrupt`; logs every request. */
async function corruptingProxy(target: string, corrupt: RegExp) {
  const seen: string[] = [];
  let corrupted = false;
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const forward = request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    if (!corrupted && req.method === 'POST' && corrupt.test(req.url!)) {
      corrupted = true;
      req.pipe(flipFirstByte()).pipe(forward);
    } else {
      req.pipe(forward);
    }
  });
  const listening = await listenOnLoopback(server);
  return { url: listening.url, seen };
}

describe('an upload the server stored differently', () => {
  it("is removed and sent again: the job ends with the child's bytes", async () => {
    const server = await startTestServer();
    const dir = await tempDir('ufdl-server-digest-');
    const kept = join(dir, 'model.expected');
    const template = await importTemplate(server, shellTemplate('digest', `head -c 2000000 /dev/urandom > "$UFDL_OUTPUT_DIR/model.bin"\ncp "$UFDL_OUTPUT_DIR/model.bin" ${kept}\n`));
    const pk = await createJob(server, template);
    const proxy = await corruptingProxy(server.url, /\/outputs\/model\.bin\//);
    const { logger, lines } = recordingLogger();
    await startTestAgent({ url: proxy.url }, {}, undefined, logger);

    const job = await waitForJob(server, pk, ended, 30_000);

    expect(job.error_reason).toBeNull();
    expect(job.outputs.map((o) => o.name).sort()).toEqual(['log', 'model.bin']);
    expect(sha256(await downloadOutput(server, pk, 'model.bin'))).toBe(sha256(await readFile(kept)));
    const uploads = proxy.seen.filter((r) => r.startsWith('POST') && r.includes('/outputs/model.bin/'));
    expect(uploads).toHaveLength(2);
    expect(proxy.seen.filter((r) => r.startsWith('DELETE') && r.includes('/outputs/model.bin/'))).toHaveLength(1);
    expect(lines.some((l) => l.msg === 'the server stored other bytes than the agent sent; removing its copy to upload again')).toBe(true);
  });
});
