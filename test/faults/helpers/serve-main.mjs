// The embedded server as its own process, from the built code, with options the CLI does not offer
// (the sweeper interval `sweepIntervalSeconds` is an internal option of `buildApp()`):
//
//   UFDL_FAULTS_DIST=<dist dir> UFDL_FAULTS_SERVER_OPTIONS='{"dataDir":…,"port":…,…}' node serve-main.mjs
//
// Logs pino JSON lines to stdout like `ufdl-agent serve`; stops on SIGTERM/SIGINT.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';

const dist = process.env.UFDL_FAULTS_DIST;
const options = JSON.parse(process.env.UFDL_FAULTS_SERVER_OPTIONS ?? '{}');
const { startServer } = await import(pathToFileURL(join(dist, 'server', 'serve.js')).href);
const log = pino({ level: options.logLevel || 'info', name: 'ufdl-server' });
const server = await startServer(options, log);
const stop = async () => {
  await server.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
