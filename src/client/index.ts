/**
 * The UFDL API client (docs/ARCHITECTURE.md, "The parts"): `new UfdlClient(options)` and what its
 * callers branch on.
 */
export { UfdlClient, WEBSOCKET_NOTIFICATIONS } from './api.js';
export type { CallOptions, ClientStatus, CreateJobBody, CreateUserBody, ListJobsOptions, NotificationOverride } from './api.js';
export { TokenManager, decodeJwtTimes } from './auth.js';
export type { TokenManagerStatus, TokenPair } from './auth.js';
export { ClientError, isClientError } from './errors.js';
export type { EndpointsStatus, EndpointStatus } from './endpoints.js';
export type { ClientErrorKind } from './errors.js';
export { DEFAULTS, resolveClientOptions, resolveServerUrls } from './options.js';
export type { CachedToken, ClientLogger, ClientOptions, ResolvedClientOptions, TokenCache } from './options.js';
export { transitionLanded } from './reconcile.js';
export type { ReconcilableAction } from './reconcile.js';
export { backoffDelayMs } from './retry.js';
export { contentDisposition } from './uploads.js';
export type { DownloadResult, UploadResult } from './uploads.js';
export { jobSocketUrl } from './watch.js';
export type { JobWatch, WatchError, WatchOptions } from './watch.js';
export { gapLength } from './live-log.js';
export type { AppendResult, LogFollow, LogFollowHandlers, LogPieceResult } from './live-log.js';
