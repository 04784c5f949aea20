/**
 * Whether, and with which cap, jobs stream their live logs: only to a server whose capabilities
 * offer live logs (never to the reference), only when `logs.live` is on, and with the smaller of
 * the agent's `logs.max_bytes` and the server's largest cap.
 */
import type { Capabilities } from '../../protocol/wire.js';
import type { LiveLogSettings } from './live-log-stream.js';

export function liveLogSettings(
  options: { liveLogs: boolean; logMaxBytes: number },
  capabilities: Capabilities | null | undefined,
): LiveLogSettings | null {
  const offered = capabilities?.extensions.live_logs;
  if (!options.liveLogs || !offered) return null;
  return { maxBytes: Math.min(options.logMaxBytes, offered.max_bytes), maxRequestBytes: offered.append_max_bytes };
}
