/**
 * Size and SHA-256 of a file, streamed (an output may be gigabytes). The normal path never calls it:
 * an output is hashed while it is uploaded (`client/file-reads.ts`). Recovery does, to learn what an
 * output it cannot vouch for holds (`server-copy.ts`).
 */
export { hashFile, type FileDigest } from '../../client/file-reads.js';
