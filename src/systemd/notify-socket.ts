/**
 * The transport of systemd's notification protocol (sd_notify(3)): one datagram of newline-separated
 * `KEY=value` lines to the AF_UNIX socket that `$NOTIFY_SOCKET` names, either a file-system path
 * (`/run/systemd/notify`) or an abstract name written with a leading `@`. Node.js cannot send
 * AF_UNIX datagrams, so the send itself is a small native function (`native/notify.c`, built by
 * `npm ci`); what to send and when is `notifier.ts`.
 */
import { createRequire } from 'node:module';
import { getSystemErrorName } from 'node:util';
import { packagePath } from '../package-files.js';

/** sun_path holds 108 bytes: a path needs its terminating NUL, an abstract name does not. */
const SUN_PATH_BYTES = 108;

/** Where the notifications go, or why they cannot be sent there. */
export type NotifyTarget = { address: string } | { problem: string };

/**
 * The address in `$NOTIFY_SOCKET`; `undefined` when it is unset or empty (not started by a service
 * manager that wants notifications).
 */
export function notifyTarget(value: string | undefined): NotifyTarget | undefined {
  if (value === undefined || value === '') return undefined;
  const bytes = Buffer.byteLength(value);
  if (value.startsWith('/')) {
    if (bytes >= SUN_PATH_BYTES) return { problem: `NOTIFY_SOCKET is a path of ${bytes} bytes; at most ${SUN_PATH_BYTES - 1} fit in a socket address` };
    return { address: value };
  }
  if (value.startsWith('@')) {
    if (bytes > SUN_PATH_BYTES || bytes < 2) return { problem: `NOTIFY_SOCKET names an abstract socket of ${bytes - 1} bytes; 1 to ${SUN_PATH_BYTES - 1} fit` };
    return { address: value };
  }
  // systemd 253 added vsock: addresses for virtual machines; they need AF_VSOCK, which we do not send to.
  return { problem: `NOTIFY_SOCKET=${JSON.stringify(value)} is neither a path nor an @abstract name (vsock addresses are not supported)` };
}

/** A notification that could not be sent; `code` is the errno name (ECONNREFUSED, ENOENT, EAGAIN, …). */
export class NotifySendError extends Error {
  readonly code: string;

  constructor(address: string, code: string) {
    super(`cannot send to the notification socket ${address}: ${code}`);
    this.name = 'NotifySendError';
    this.code = code;
  }
}

interface NativeNotify {
  send(address: string, message: Buffer): number;
}

let native: NativeNotify | Error | undefined;

/** The native send, or the error that says why it is missing (not built). */
export function loadNativeNotify(): NativeNotify | Error {
  if (native === undefined) {
    try {
      // node-gyp builds it in the package root's build/Release/.
      native = createRequire(import.meta.url)(packagePath('build', 'Release', 'ufdl_notify.node')) as NativeNotify;
    } catch (err) {
      native = new Error(
        `the native notify module is not built (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); ` +
          'run `npm rebuild` (or `npm ci`) with python3, make and a C compiler installed',
      );
    }
  }
  return native;
}

/** Send one datagram; throws {@link NotifySendError}. Never blocks: a full socket queue is EAGAIN. */
export function sendDatagram(address: string, message: string): void {
  const module = loadNativeNotify();
  if (module instanceof Error) throw module;
  const errno = module.send(address, Buffer.from(message, 'utf8'));
  if (errno !== 0) throw new NotifySendError(address, safeErrorName(errno));
}

function safeErrorName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
}

/** One assignment's value on one line: the protocol separates assignments by newlines. */
export function oneLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ').trim();
}
