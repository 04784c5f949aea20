import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashFile } from '../../../src/agent/outputs/hash.js';
import { writeJobLog } from '../../../src/agent/outputs/job-log.js';
import { outputNameProblem } from '../../../src/agent/outputs/names.js';
import { scanOutputs } from '../../../src/agent/outputs/scan.js';
import { tempJobDir, tempWorkDir } from '../child/helpers.js';

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

describe('outputNameProblem', () => {
  it('accepts ordinary file names, including spaces, percent signs and non-ASCII', () => {
    for (const name of ['model.zip', 'predictions 1.csv', '100%.txt', 'modèle.pt', 'a'.repeat(200), '..x', 'x..']) {
      expect(outputNameProblem(name)).toBeUndefined();
    }
  });

  it.each([
    ['', 'is empty'],
    ['.', 'is a path component'],
    ['..', 'is a path component'],
    ['a'.repeat(201), 'is longer than 200 characters'],
    ['a/b', 'contains a path separator'],
    ['a\\b', 'contains a path separator'],
    ['a\nb', 'contains a control character'],
    ['a\u0000b', 'contains a control character'],
  ])('refuses %j', (name, problem) => {
    expect(outputNameProblem(name)).toBe(problem);
  });
});

describe('scanOutputs', () => {
  it('lists top-level regular files with declared types, else BLOB, without reading them (the upload hashes them)', async () => {
    const dir = await tempJobDir();
    await writeFile(join(dir.outputDir, 'model.zip'), 'zip bytes');
    await writeFile(join(dir.outputDir, 'notes.txt'), 'hello');
    await writeFile(join(dir.outputDir, 'empty'), ''); // zero-byte outputs are allowed (B12)
    const scan = await scanOutputs(dir.outputDir, { 'model.zip': 'Compressed<JSON, 8>', 'report.pdf': 'BLOB' });
    expect(scan.files).toEqual([
      { name: 'empty', type: 'BLOB', path: join(dir.outputDir, 'empty') },
      { name: 'model.zip', type: 'Compressed<JSON, 8>', path: join(dir.outputDir, 'model.zip') },
      { name: 'notes.txt', type: 'BLOB', path: join(dir.outputDir, 'notes.txt') },
    ]);
    expect(scan.skipped).toEqual([]);
    expect(scan.missing).toEqual(['report.pdf']);
  });

  it('skips, with a reason, what is not a safe top-level regular file', async () => {
    const dir = await tempJobDir();
    const out = dir.outputDir;
    await mkdir(join(out, 'subdir'));
    await writeFile(join(out, 'subdir', 'inner.txt'), 'not uploaded');
    await symlink('/etc/passwd', join(out, 'passwd'));
    execFileSync('mkfifo', [join(out, 'pipe')]);
    await writeFile(join(out, 'line\nbreak'), 'x');
    await writeFile(join(out, 'log'), 'x');
    await writeFile(join(out, 'a'.repeat(201)), 'x');
    await writeFile(Buffer.concat([Buffer.from(`${out}/bad-`), Buffer.from([0xff, 0xfe])]), 'x');
    await writeFile(join(out, 'ok.bin'), 'ok');

    const scan = await scanOutputs(out);
    expect(scan.files.map((f) => f.name)).toEqual(['ok.bin']);
    const reasons = Object.fromEntries(scan.skipped.map((s) => [s.name, s.reason]));
    expect(reasons).toEqual({
      subdir: 'is a directory (only top-level regular files are uploaded; archive a tree)',
      passwd: 'is a symbolic link (only regular files are uploaded)',
      pipe: 'is not a regular file',
      'line\nbreak': 'the name contains a control character',
      log: "the name 'log' is reserved for the job log",
      ['a'.repeat(201)]: 'the name is longer than 200 characters',
      'bad-\ufffd\ufffd': 'the name is not valid UTF-8',
    });
  });

  it('has no outputs when the directory is missing', async () => {
    const scan = await scanOutputs(join(await tempWorkDir(), 'nope'), { model: 'BLOB' });
    expect(scan).toEqual({ files: [], skipped: [], missing: ['model'] });
  });
});

describe('hashFile', () => {
  it('streams a large file', async () => {
    const file = join(await tempWorkDir(), 'big');
    const data = Buffer.alloc(20 * 1024 * 1024 + 3, 7);
    await writeFile(file, data);
    expect(await hashFile(file)).toEqual({ size: data.length, sha256: sha(data) });
  });

  it('refuses a symbolic link', async () => {
    const work = await tempWorkDir();
    await writeFile(join(work, 'target'), 'x');
    await symlink(join(work, 'target'), join(work, 'link'));
    await expect(hashFile(join(work, 'link'))).rejects.toThrow(/ELOOP/);
  });
});

describe('writeJobLog', () => {
  it('is the console output, byte for byte, and hashes what it wrote', async () => {
    const dir = await tempJobDir();
    await writeFile(dir.consolePath, 'out 1\nerr 1\nout 2 (no newline)');
    const log = await writeJobLog(dir, 1024 ** 2);
    const text = await readFile(dir.logPath, 'utf8');
    expect(text).toBe('out 1\nerr 1\nout 2 (no newline)');
    expect(log).toEqual({ name: 'log', type: 'BLOB', path: dir.logPath, size: Buffer.byteLength(text), sha256: sha(text) });

    const silent = await tempJobDir(2);
    expect(await writeJobLog(silent, 1024 ** 2)).toMatchObject({ size: 0, sha256: sha('') });
  });

  it('keeps the head and the tail of an output over the cap, and says what it dropped', async () => {
    const dir = await tempJobDir();
    const max = 64 * 1024;
    // 0..9 repeated: every byte's offset can be checked from its value.
    const console = Buffer.from(Array.from({ length: 200 * 1024 }, (_, i) => 48 + (i % 10)));
    await writeFile(dir.consolePath, console);
    await writeJobLog(dir, max);
    const text = await readFile(dir.logPath, 'latin1');
    // head = 32 KiB; cells of 16 KiB; the last byte is in cell 10, so cells 9 and 10 are kept.
    const head = 32 * 1024;
    const keptFrom = head + 9 * 16 * 1024;
    const marker = `\n[ufdl-agent: ${keptFrom - head} bytes of output dropped here (bytes ${head} to ${keptFrom}); the log keeps its first and last bytes within logs.max_bytes = ${max}]\n`;
    expect(text).toBe(console.subarray(0, head).toString('latin1') + marker + console.subarray(keptFrom).toString('latin1'));
    expect(text.length).toBeLessThanOrEqual(max + marker.length);
  });

  it('fails, as a rejection, when its path is taken by a directory the job left', async () => {
    // The job directory is the job's working directory; its code may have made `log.txt` a directory.
    const dir = await tempJobDir();
    await writeFile(dir.consolePath, Buffer.alloc(4 * 1024 * 1024, 'x'));
    await mkdir(dir.logPath);
    await expect(writeJobLog(dir, 8 * 1024 * 1024)).rejects.toThrow(/EISDIR/);
  });
});
