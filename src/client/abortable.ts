/**
 * Waiting for a promise that the waiter may stop waiting for: the waiter's signal ends its wait, not
 * the work behind the promise (which others may share, or which cleans up on its own).
 */

/**
 * `promise`, or a rejection with `reason()` once `signal` aborts, after `onAbort` (the promise itself
 * is then left to settle unobserved).
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal, reason: () => Error, onAbort?: () => void): Promise<T> {
  const leave = (): Error => {
    promise.catch(() => {});
    onAbort?.();
    return reason();
  };
  if (signal.aborted) return Promise.reject(leave());
  return new Promise<T>((resolve, reject) => {
    const aborted = () => reject(leave());
    signal.addEventListener('abort', aborted, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', aborted);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', aborted);
        reject(err);
      },
    );
  });
}
